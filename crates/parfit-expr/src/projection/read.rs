//! Reading the CSV tables a model declares (`table mort(age, duration ultimate across) missing 0`) into the
//! [`Table`]s it compiles against, and the model-point table into its rows of attributes. One reader for every
//! model: the declaration says which columns are keys, which key (if any) runs across the header, and which
//! value columns are text or conditions; every cell is checked where it is read and a bad one is reported as
//! `file:line:column: column 'name': expected …, found '…'`.

use std::collections::BTreeSet;

use rustc_hash::{FxHashMap, FxHashSet};

use super::syntax::{KeyDecl, Range, TableDecl};
use super::{AttrValue, Attribute, ColumnData, Key, Table, ValueKind};

/// A CSV file's header and data rows (blank lines skipped, cells trimmed).
struct Csv<'a> {
    file: &'a str,
    header: Vec<String>,
    /// Each data row's 1-based line.
    lines: Vec<usize>,
    cells: Cells,
}

/// The cells of every data row, one after the other in one string, with where each ends: the model points are
/// most of a run's input, and an allocation per cell or row made reading them cost as much as projecting them.
/// The model points keep it for their ids and text columns.
#[derive(Debug, Clone)]
struct Cells {
    /// Cells per row.
    width: usize,
    text: String,
    /// Where each cell ends in `text`.
    ends: Vec<usize>,
}

impl Cells {
    /// Row `i`.
    fn row(&self, i: usize) -> Row<'_> {
        let w = self.width;
        Row {
            cells: &self.text,
            start: if i == 0 { 0 } else { self.ends[i * w - 1] },
            ends: &self.ends[i * w..(i + 1) * w],
        }
    }
}

/// One data row's cells, indexed by column.
#[derive(Clone, Copy)]
struct Row<'a> {
    cells: &'a str,
    /// The end of the previous row's last cell, and the ends of this row's cells.
    start: usize,
    ends: &'a [usize],
}

impl<'a> Row<'a> {
    /// Column `c`'s cell, borrowed from the table.
    fn cell(&self, c: usize) -> &'a str {
        let from = if c == 0 { self.start } else { self.ends[c - 1] };
        &self.cells[from..self.ends[c]]
    }
}

impl std::ops::Index<usize> for Row<'_> {
    type Output = str;

    fn index(&self, c: usize) -> &str {
        self.cell(c)
    }
}

/// Read `text` as CSV (RFC 4180 quoting; records end at `\n`, `\r` or `\r\n`; empty lines skipped): the header,
/// then every data row whose cells are not all blank, each with its 1-based line.
fn parse_csv<'a>(file: &'a str, text: &str) -> Result<Csv<'a>, String> {
    parfit_core::limits::check_allocation(&format!("table {file}"), text.len() as f64, 8.0)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{file}:1: cannot read the header ({e})"))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(format!("{file}: the file is empty (a header row is needed)"));
    }
    let bytes = text.as_bytes();
    // Lines are counted from the bytes (the reader's own count skips blank lines).
    let (mut line, mut counted) = (1usize, 0usize);
    let mut line_at = |byte: usize| {
        let mut at = byte.min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
            at += 1;
        }
        if at > counted {
            line += memchr::memchr_iter(b'\n', &bytes[counted..at]).count();
            counted = at;
        }
        line
    };
    // The vectors are sized once, from the line count (a data row has at most one cell per byte of the text).
    let rows = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let mut lines = Vec::with_capacity(rows);
    // The cells are kept as bytes and checked as UTF-8 once at the end: `text` is already UTF-8 and cells end at
    // ASCII delimiters, so the per-record check of a `StringRecord` would only repeat it.
    let mut cells: Vec<u8> = Vec::with_capacity(text.len());
    let mut ends = Vec::with_capacity(rows.saturating_mul(header.len()).min(text.len() + 1));
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map_or(0, |p| p.byte() as usize);
                let what = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "the text is not valid UTF-8".to_string(),
                    _ => e.to_string(),
                };
                return Err(format!("{file}:{}: {what}", line_at(at)));
            }
        }
        // The row's cells are kept as they are trimmed; a row of blank cells is taken back out.
        let (cells_before, ends_before) = (cells.len(), ends.len());
        let mut blank = true;
        for c in record.iter() {
            let c = trim(c);
            blank &= c.is_empty();
            cells.extend_from_slice(c);
            ends.push(cells.len());
        }
        if blank {
            cells.truncate(cells_before);
            ends.truncate(ends_before);
            continue;
        }
        let line = line_at(record.position().map_or(0, |p| p.byte() as usize));
        if record.len() != header.len() {
            return Err(format!(
                "{file}:{line}:{}: the row has {} cells but the header has {}",
                record.len().min(header.len()) + 1,
                record.len(),
                header.len()
            ));
        }
        lines.push(line);
    }
    let cells = String::from_utf8(cells).map_err(|_| format!("{file}: the text is not valid UTF-8"))?;
    if lines.is_empty() {
        return Err(format!("{file}: the table has a header but no data rows"));
    }
    let width = header.len();
    Ok(Csv { file, header, lines, cells: Cells { width, text: cells, ends } })
}

/// A cell's bytes trimmed as `str::trim` trims its text: ASCII whitespace here, and a cell that still begins or ends
/// with a non-ASCII byte as text (Unicode whitespace).
fn trim(cell: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r');
    let start = cell.iter().position(|b| !space(b)).unwrap_or(cell.len());
    let end = cell.iter().rposition(|b| !space(b)).map_or(start, |e| e + 1);
    let cell = &cell[start..end];
    match (cell.first(), cell.last()) {
        (Some(a), Some(z)) if !a.is_ascii() || !z.is_ascii() => {
            std::str::from_utf8(cell).map_or(cell, |s| s.trim().as_bytes())
        }
        _ => cell,
    }
}

impl Csv<'_> {
    /// Every data row with its line.
    fn rows(&self) -> impl Iterator<Item = (usize, Row<'_>)> + '_ {
        self.lines.iter().enumerate().map(|(i, &line)| (line, self.cells.row(i)))
    }

    /// An error about a cell: `file:line:column: column 'name': message`.
    fn cell_error(&self, line: usize, col: usize, message: impl std::fmt::Display) -> String {
        let name = self.header.get(col).map_or("?", String::as_str);
        format!("{}:{line}:{}: column '{name}': {message}", self.file, col + 1)
    }

    /// The header column of a declared key (case aside: lifelib's `Age` is the key `age`).
    fn column(&self, table: &str, name: &str) -> Result<usize, String> {
        self.header.iter().position(|h| h.eq_ignore_ascii_case(name)).ok_or_else(|| {
            format!(
                "{}:1: no column '{name}', which table '{table}' of the model declares (the header has: {})",
                self.file,
                self.header.join(", ")
            )
        })
    }
}

/// A finite number, or what was expected and found.
fn number(cell: &str) -> Result<f64, String> {
    // Whole numbers (most model-point cells) parse faster as integers and convert to the float the float parse
    // gives (both round to nearest, ties to even), but for "-0", whose sign only the float keeps.
    if let Ok(i) = cell.parse::<i64>()
        && (i != 0 || !cell.starts_with('-'))
    {
        return Ok(i as f64);
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ if cell.is_empty() => Err("expected a number, found an empty cell".into()),
        _ => Err(format!("expected a number, found '{cell}'")),
    }
}

/// A whole number (`47` or `47.0`).
fn whole(cell: &str) -> Result<i64, String> {
    if let Ok(v) = cell.parse::<i64>() {
        return Ok(v);
    }
    match cell.parse::<f64>() {
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(v as i64),
        _ if cell.is_empty() => Err("expected a whole number, found an empty cell".into()),
        _ => Err(format!("expected a whole number, found '{cell}'")),
    }
}

/// A finite number within the column's declared range (if any), or what was expected and found.
fn ranged(cell: &str, range: Option<&Range>) -> Result<f64, String> {
    let v = number(cell)?;
    match range {
        Some(r) if !r.contains(v) => Err(format!("{cell} is not {r}")),
        _ => Ok(v),
    }
}

/// The declared range of column `column`, if any.
fn range_of<'a>(decl: &'a TableDecl, column: &str) -> Option<&'a Range> {
    decl.ranges.iter().find(|r| r.0 == column).map(|r| &r.1)
}

/// `True`/`False` as pandas writes conditions (also `true`/`false`, `TRUE`/`FALSE`, `1`/`0`).
fn boolean(cell: &str) -> Result<bool, String> {
    match cell {
        "True" | "true" | "TRUE" | "1" => Ok(true),
        "False" | "false" | "FALSE" | "0" => Ok(false),
        _ => Err(format!("expected True or False, found '{cell}'")),
    }
}

/// One key's value in a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyValue {
    Int(i64),
    Text(String),
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Int(v) => write!(f, "{v}"),
            KeyValue::Text(s) => write!(f, "'{s}'"),
        }
    }
}

fn key_value(k: &KeyDecl, cell: &str) -> Result<KeyValue, String> {
    if k.text {
        Ok(KeyValue::Text(cell.to_string()))
    } else {
        whole(cell)
            .map(KeyValue::Int)
            .map_err(|e| format!("{e} (key '{}'; a text key is declared '{} text')", k.name, k.name))
    }
}

/// A row key's value as read from its cell (text borrowed from the table).
#[derive(Clone, Copy)]
enum RawKey<'a> {
    Int(i64),
    Text(&'a str),
}

fn raw_key<'a>(k: &KeyDecl, cell: &'a str) -> Result<RawKey<'a>, String> {
    if k.text {
        Ok(RawKey::Text(cell))
    } else {
        whole(cell)
            .map(RawKey::Int)
            .map_err(|e| format!("{e} (key '{}'; a text key is declared '{} text')", k.name, k.name))
    }
}

/// How a row key's value finds its position among the key's distinct values; the key across the header is
/// placed by column instead.
enum Find<'a> {
    Ints(Vec<i64>),
    Texts(FxHashMap<&'a str, usize>),
    Across,
}

/// The kind of a value column: what the declaration says, else a number.
fn kind_of(decl: &TableDecl, column: &str) -> ValueKind {
    decl.columns.iter().find(|c| c.0 == column).map_or(ValueKind::Number, |c| c.1)
}

/// Read the CSV `text` of file `file` as the table `decl` declares: keys are the declared columns (matched to the
/// header without regard to case), or, for the key marked `across`, the labels of every other column (a wide
/// table, one value column named after the table); every other column is a value column, a number unless the
/// declaration says `text` or `bool`. Every combination of key values must have exactly one row.
pub fn read_table(decl: &TableDecl, file: &str, text: &str) -> Result<Table, String> {
    let csv = parse_csv(file, text)?;
    let tname = decl.name.as_str();
    // Each row key's column; the across key's (column, value) pairs.
    let mut key_cols: Vec<Option<usize>> = vec![];
    for k in &decl.keys {
        key_cols.push(if k.across { None } else { Some(csv.column(tname, &k.name)?) });
    }
    let value_cols: Vec<usize> = (0..csv.header.len()).filter(|c| !key_cols.contains(&Some(*c))).collect();
    if value_cols.is_empty() {
        return Err(format!("{file}:1: table '{tname}' has no value columns (every column is a key)"));
    }
    let across = decl.keys.iter().position(|k| k.across);
    let across_labels: Vec<KeyValue> = match across {
        Some(a) => {
            if let Some((c, ..)) = decl.columns.iter().find(|(c, kind, _)| c != tname || *kind != ValueKind::Number) {
                return Err(format!(
                    "{file}: table '{tname}' runs across the header, so its values are numbers; 'with {c} …' \
                     does not apply"
                ));
            }
            let k = &decl.keys[a];
            value_cols
                .iter()
                .map(|&c| key_value(k, &csv.header[c]).map_err(|e| format!("{file}:1:{}: column label: {e}", c + 1)))
                .collect::<Result<_, _>>()?
        }
        // A declared column the file lacks is refused only where the model reads it (the compiler names the
        // read): a model need not be given what it never reads.
        None => vec![],
    };
    // Each row key's value in each row (rows × row keys, one after the other), each cell parsed once.
    let n_row_keys = key_cols.iter().filter(|c| c.is_some()).count();
    let mut raw: Vec<RawKey<'_>> = Vec::with_capacity(csv.lines.len() * n_row_keys);
    for (line, cells) in csv.rows() {
        for (k, col) in decl.keys.iter().zip(&key_cols) {
            if let Some(c) = *col {
                raw.push(raw_key(k, cells.cell(c)).map_err(|e| csv.cell_error(line, c, e))?);
            }
        }
    }
    // The distinct values of each key (whole numbers increasing, text in order of first appearance) and how a
    // row key's value finds its position among them.
    let mut values: Vec<Vec<KeyValue>> = vec![];
    let mut finds: Vec<Find<'_>> = vec![];
    let mut row_key_index = 0;
    for (i, k) in decl.keys.iter().enumerate() {
        if k.across {
            let distinct: BTreeSet<&KeyValue> = across_labels.iter().collect();
            if distinct.len() != across_labels.len() {
                return Err(format!("{file}:1: a column label is given twice (key '{}')", decl.keys[i].name));
            }
            values.push(across_labels.clone());
            finds.push(Find::Across);
            continue;
        }
        let column = raw.iter().skip(row_key_index).step_by(n_row_keys);
        row_key_index += 1;
        if k.text {
            let mut at: FxHashMap<&str, usize> = FxHashMap::default();
            let mut vals = vec![];
            for v in column {
                if let RawKey::Text(s) = *v
                    && !at.contains_key(s)
                {
                    at.insert(s, vals.len());
                    vals.push(KeyValue::Text(s.to_string()));
                }
            }
            values.push(vals);
            finds.push(Find::Texts(at));
        } else {
            let mut ints: Vec<i64> = column.map(|v| if let RawKey::Int(x) = *v { x } else { 0 }).collect();
            ints.dedup();
            // Files are mostly written in key order, so the column is sorted only when it is not: otherwise its
            // distinct values (far fewer than its rows, a key repeating for every value of the others) are.
            if !ints.is_sorted() {
                let distinct: FxHashSet<i64> = ints.iter().copied().collect();
                ints = distinct.into_iter().collect();
                ints.sort_unstable();
            }
            values.push(ints.iter().map(|&x| KeyValue::Int(x)).collect());
            finds.push(Find::Ints(ints));
        }
    }
    let cells = values.iter().try_fold(1usize, |n, v| n.checked_mul(v.len())).unwrap_or(usize::MAX);
    let n_cols = if across.is_some() { 1 } else { value_cols.len() };
    parfit_core::limits::check_allocation(&format!("table '{tname}' ({file})"), cells as f64 * n_cols as f64, 16.0)?;
    let strides: Vec<usize> = (0..values.len()).map(|k| values[k + 1..].iter().map(Vec::len).product()).collect();
    // The line of the row that gave each cell, and the columns' values.
    let mut from: Vec<usize> = vec![0; cells];
    let mut data: Vec<ColumnData> = if across.is_some() {
        vec![ColumnData::Numbers(vec![0.0; cells])]
    } else {
        value_cols
            .iter()
            .map(|&c| match kind_of(decl, &csv.header[c]) {
                ValueKind::Number => ColumnData::Numbers(vec![0.0; cells]),
                ValueKind::Bool => ColumnData::Bools(vec![false; cells]),
                ValueKind::Text => ColumnData::Texts(vec![String::new(); cells]),
            })
            .collect()
    };
    let describe = |at: usize| -> String {
        let mut parts = vec![];
        for (k, v) in decl.keys.iter().zip(&values) {
            let i = at / strides[parts.len()] % v.len().max(1);
            parts.push(format!("{} {}", k.name, v[i]));
        }
        parts.join(", ")
    };
    // Each value column's declared range; a wide table's cells are all its one value column, named after the table.
    let ranges: Vec<Option<&Range>> =
        value_cols.iter().map(|&c| range_of(decl, if across.is_some() { tname } else { &csv.header[c] })).collect();
    // Each key's position in the previous row: in a file in key order a key's value is that of the row before or
    // the next one, found without a search.
    let mut previous = vec![0usize; finds.len()];
    for (row, (line, cells)) in csv.rows().enumerate() {
        let keys = &raw[row * n_row_keys..(row + 1) * n_row_keys];
        let mut base = 0;
        let mut r = 0;
        for ((find, stride), previous) in finds.iter().zip(&strides).zip(&mut previous) {
            let position = match (find, keys.get(r)) {
                (Find::Across, _) => continue,
                (Find::Ints(v), Some(RawKey::Int(x))) => {
                    *previous = match v.get(*previous..) {
                        Some([a, ..]) if a == x => *previous,
                        Some([_, b, ..]) if b == x => *previous + 1,
                        _ => v.binary_search(x).unwrap_or(0),
                    };
                    *previous
                }
                (Find::Texts(at), Some(RawKey::Text(s))) => at.get(s).copied().unwrap_or(0),
                _ => 0,
            };
            base += position * stride;
            r += 1;
        }
        for (i, &c) in value_cols.iter().enumerate() {
            let (at, d) = match across {
                Some(a) => (base + i * strides[a], 0),
                None => (base, i),
            };
            if from[at] != 0 {
                return Err(format!(
                    "{file}:{line}: a second row for {} (the first is line {})",
                    describe(at),
                    from[at]
                ));
            }
            let cell = &cells[c];
            match &mut data[d] {
                ColumnData::Numbers(v) => v[at] = ranged(cell, ranges[i]).map_err(|e| csv.cell_error(line, c, e))?,
                ColumnData::Bools(v) => v[at] = boolean(cell).map_err(|e| csv.cell_error(line, c, e))?,
                ColumnData::Texts(v) => v[at] = cell.to_string(),
            }
            if d + 1 == data.len() || across.is_some() {
                from[at] = line;
            }
        }
    }
    if let Some(at) = from.iter().position(|&l| l == 0) {
        return Err(format!(
            "{file}: no row for {} (the table needs a row for every combination of its keys)",
            describe(at)
        ));
    }
    let keys = decl
        .keys
        .iter()
        .zip(values)
        .map(|(k, v)| {
            let key = if k.text {
                Key::Texts(v.into_iter().map(|x| if let KeyValue::Text(s) = x { s } else { String::new() }).collect())
            } else {
                Key::Ints {
                    values: v.into_iter().map(|x| if let KeyValue::Int(i) = x { i } else { 0 }).collect(),
                    ultimate: k.ultimate,
                }
            };
            (k.name.clone(), key)
        })
        .collect();
    let names: Vec<String> = if across.is_some() {
        vec![decl.name.clone()]
    } else {
        value_cols.iter().map(|&c| csv.header[c].clone()).collect()
    };
    Ok(Table { name: decl.name.clone(), keys, columns: names.into_iter().zip(data).collect(), missing: decl.missing })
}

/// A table of numpy's standard normal draws: `numpy.random.default_rng(seed).standard_normal(size)`, made rather
/// than read. `size` has one extent per declared key and `start` each key's first value: key *k* runs over
/// `start[k] .. start[k] + size[k]`, the last key fastest, as numpy fills an array of that shape (lifelib's
/// savings examples: `size = [10000, 242]`, `start = [1, 0]` for `std_norm_rand[scen_id, t]`). Its one value
/// column is named after the table. `name` says where the request was written (errors begin with it) and
/// `model` names the file of the declaration; the draws are made once, whatever the threads or ranks that read
/// them (see `parfit_core::numpy_rng`).
pub fn numpy_normal_table(
    decl: &TableDecl,
    name: &str,
    model: &str,
    seed: u64,
    size: &[usize],
    start: &[i64],
) -> Result<Table, String> {
    let tname = decl.name.as_str();
    let at = format!("{model}:{}:{}", decl.pos.line, decl.pos.col);
    if size.len() != decl.keys.len() || start.len() != size.len() {
        return Err(format!(
            "{name}: table '{tname}' ({at}) has {} keys, so the draws need {0} extents in size and start; given {} \
             and {}",
            decl.keys.len(),
            size.len(),
            start.len()
        ));
    }
    if let Some(k) = decl.keys.iter().find(|k| k.text || k.across) {
        return Err(format!(
            "{name}: table '{tname}' ({at}): key '{}' is {}, but generated draws have whole-number keys",
            k.name,
            if k.text { "text" } else { "across" }
        ));
    }
    if let Some((c, _, _)) = decl.columns.first() {
        return Err(format!(
            "{name}: table '{tname}' ({at}): its values are the draws (one number column named after the \
             table); 'with {c} …' does not apply"
        ));
    }
    // The size is checked against the memory budget before any key or draw is allocated (in floating point: a
    // size from input may overflow any integer sum or product).
    let count = size.iter().try_fold(1usize, |n, &s| n.checked_mul(s)).unwrap_or(usize::MAX);
    let extents = size.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ");
    let what = format!("{name}: table '{tname}' ({extents} draws)");
    let cells = size.iter().map(|&n| n as f64).product::<f64>() + size.iter().map(|&n| n as f64).sum::<f64>();
    parfit_core::limits::check_allocation(&what, cells, 8.0)?;
    let mut keys = Vec::with_capacity(size.len());
    for ((k, &n), &first) in decl.keys.iter().zip(size).zip(start) {
        if n == 0 {
            return Err(format!("{name}: key '{}' has 0 values (each extent of size is at least 1)", k.name));
        }
        let last = i64::try_from(n - 1).ok().and_then(|m| first.checked_add(m)).ok_or_else(|| {
            format!("{name}: key '{}' from {first} over {n} values is outside the whole numbers a key can hold", k.name)
        })?;
        keys.push((k.name.clone(), Key::Ints { values: (first..=last).collect(), ultimate: k.ultimate }));
    }
    let draws = parfit_core::numpy_rng::standard_normal(&what, seed, count)?;
    Ok(Table {
        name: tname.to_string(),
        keys,
        columns: vec![(tname.to_string(), ColumnData::Numbers(draws))],
        missing: decl.missing,
    })
}

/// The ids of a scenario table: the values of its key marked `scenarios`, in order (`None`: the declaration
/// marks no key).
pub fn scenario_ids(decl: &TableDecl, table: &Table) -> Option<Vec<i64>> {
    let k = decl.keys.iter().position(|k| k.scenarios)?;
    match &table.keys.get(k)?.1 {
        Key::Ints { values, .. } => Some(values.clone()),
        Key::Texts(_) => None,
    }
}

/// One column of the model points: its numbers, or where its text is among the cells.
#[derive(Debug, Clone)]
enum PointColumn {
    Numbers(Vec<f64>),
    Texts { column: usize },
}

/// The model-point table: one row per policy, its id and its attributes (`mp.NAME`).
#[derive(Debug, Clone)]
pub struct Points {
    /// The id column's name.
    pub id_column: String,
    /// Each row's line in the file.
    pub lines: Vec<usize>,
    /// The attributes, in the header's order (every column but the id).
    pub attributes: Vec<Attribute>,
    columns: Vec<PointColumn>,
    /// The table's cells: the ids and the text columns are read from them.
    cells: Cells,
}

/// The model points' id column: the first.
const ID: usize = 0;

impl Points {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Row `i`'s id (empty past the last row).
    pub fn id(&self, i: usize) -> &str {
        self.text(i, ID)
    }

    /// The cell of row `i` in column `column` (empty past the last row).
    fn text(&self, i: usize, column: usize) -> &str {
        if i < self.len() && column < self.cells.width { self.cells.row(i).cell(column) } else { "" }
    }

    /// Row `i`'s attributes into `out` (cleared), in [`Points::attributes`] order.
    pub fn row<'a>(&'a self, i: usize, out: &mut Vec<AttrValue<'a>>) {
        out.clear();
        for c in &self.columns {
            out.push(match c {
                PointColumn::Numbers(v) => AttrValue::Number(v.get(i).copied().unwrap_or(f64::NAN)),
                PointColumn::Texts { column } => AttrValue::Text(self.text(i, *column)),
            });
        }
    }

    /// The number in column `name` of row `i`, if the column is numeric.
    pub fn number(&self, name: &str, i: usize) -> Option<f64> {
        let c = self.attributes.iter().position(|a| a.name == name)?;
        match &self.columns[c] {
            PointColumn::Numbers(v) => v.get(i).copied(),
            PointColumn::Texts { .. } => None,
        }
    }
}

/// Read the model-point table. Its first column is the policy id (the declaration's one key names it). With a
/// declaration (`table mp(policy_id) with spec_id text, sex text`) the columns it lists have their kinds and every other column is a number, checked cell by
/// cell; ids must be distinct. Without one a column is a number when every cell
/// is one, else text.
pub fn read_points(decl: Option<&TableDecl>, file: &str, text: &str) -> Result<Points, String> {
    let csv = parse_csv(file, text)?;
    if let Some(d) = decl
        && d.keys.len() != 1
    {
        return Err(format!("table '{}' (the model points) has one key, the policy id column", d.name));
    }
    // The id is the first column, as the host reads it (lifelib's sample table calls it `poind_id`).
    let id = ID;
    // A declared column the file lacks is refused only where the model reads it (`mp.sex`: the compiler names the
    // read), so a table without a column the model never reads is accepted.
    if decl.is_some() {
        let mut seen: FxHashMap<&str, usize> = FxHashMap::with_capacity_and_hasher(csv.lines.len(), Default::default());
        for (row, (line, cells)) in csv.rows().enumerate() {
            if let Some(first) = seen.insert(cells.cell(id), row) {
                let first_line = csv.lines.get(first).copied().unwrap_or(0);
                return Err(csv.cell_error(
                    line,
                    id,
                    format!("the policy id '{}' is also row {} (line {first_line})", &cells[id], first + 1),
                ));
            }
        }
    }
    let mut attributes = vec![];
    let mut columns = vec![];
    // The columns whose text is kept (the id, then each text column), copied into one string below.
    let mut kept = vec![id];
    for (c, name) in csv.header.iter().enumerate() {
        if c == id {
            continue;
        }
        let kind = match decl {
            Some(d) => kind_of(d, name),
            None if csv.rows().all(|(_, r)| number(&r[c]).is_ok()) => ValueKind::Number,
            None => ValueKind::Text,
        };
        let range = decl.and_then(|d| range_of(d, name));
        let column = match kind {
            ValueKind::Text => {
                kept.push(c);
                PointColumn::Texts { column: kept.len() - 1 }
            }
            ValueKind::Number | ValueKind::Bool => {
                let mut values = Vec::with_capacity(csv.lines.len());
                for (l, r) in csv.rows() {
                    let value = match kind {
                        ValueKind::Bool => boolean(&r[c]).map(f64::from),
                        _ => ranged(&r[c], range),
                    };
                    values.push(value.map_err(|e| csv.cell_error(l, c, e))?);
                }
                PointColumn::Numbers(values)
            }
        };
        attributes.push(Attribute { name: name.clone(), kind });
        columns.push(column);
    }
    // The numbers are parsed, so only the kept columns' cells stay (a 100K-point table's every cell would be
    // megabytes held for the whole run).
    let mut cells =
        Cells { width: kept.len(), text: String::new(), ends: Vec::with_capacity(csv.lines.len() * kept.len()) };
    for (_, r) in csv.rows() {
        for &c in &kept {
            cells.text.push_str(r.cell(c));
            cells.ends.push(cells.text.len());
        }
    }
    Ok(Points { id_column: csv.header[id].clone(), lines: csv.lines, attributes, columns, cells })
}

#[cfg(test)]
mod tests {
    use super::super::{ProjectionProgram, compile_projection, table_declarations};
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn decl(src: &str) -> TableDecl {
        table_declarations("m.prj", src).unwrap().remove(0)
    }

    fn read(src: &str, text: &str) -> Result<Table, String> {
        read_table(&decl(src), "t.csv", text)
    }

    fn ints(t: &Table, k: usize) -> Vec<i64> {
        match &t.keys[k].1 {
            Key::Ints { values, .. } => values.clone(),
            Key::Texts(_) => panic!("text key"),
        }
    }

    #[test]
    fn wide_and_long_tables_read_into_keys_and_columns() {
        // lifelib's mort_table.csv: Age down, policy years across, the last ultimate.
        let t =
            read("table mort(age, duration ultimate across) missing 0", "Age,0,1\n18,0.1,0.2\n19,0.3,0.4\n").unwrap();
        assert_eq!((ints(&t, 0), ints(&t, 1)), (vec![18, 19], vec![0, 1]));
        assert!(matches!(t.keys[1].1, Key::Ints { ultimate: true, .. }));
        assert!(matches!(&t.columns[..], [(n, ColumnData::Numbers(v))] if n == "mort" && v == &[0.1, 0.2, 0.3, 0.4]));
        assert_eq!(t.missing, Some(0.0));
        // Text labels across (surr_charge_table.csv), rows in any order.
        let t = read("table s(duration, type text across)", "duration,type_1,type_2\n1,3,4\n0,1,2\n").unwrap();
        assert!(matches!(&t.keys[1].1, Key::Texts(l) if l == &["type_1", "type_2"]));
        assert!(matches!(&t.columns[0].1, ColumnData::Numbers(v) if v == &[1.0, 2.0, 3.0, 4.0]));
        // A long table with text, conditions and numbers; a text key keeps the file's order.
        let t = read(
            "table product(spec_id text) with kind text, wl bool",
            "spec_id,kind,wl,load\nB,SINGLE,True,0.1\nA,LEVEL,False,0\n",
        )
        .unwrap();
        assert!(matches!(&t.keys[0].1, Key::Texts(l) if l == &["B", "A"]));
        assert!(matches!(&t.columns[1].1, ColumnData::Bools(v) if v == &[true, false]));
        assert!(matches!(&t.columns[2].1, ColumnData::Numbers(v) if v == &[0.1, 0.0]));
        // Two keys, one of them the scenario ids.
        let d = decl("table z(scen_id scenarios, t)");
        let t = read_table(&d, "z.csv", "scen_id,t,z\n1,0,0.5\n1,1,0.6\n2,0,0.7\n2,1,0.8\n").unwrap();
        assert_eq!(scenario_ids(&d, &t), Some(vec![1, 2]));
        assert_eq!(scenario_ids(&decl("table y(a)"), &t), None);
    }

    #[test]
    fn keys_in_any_order_and_cells_trimmed_as_text() {
        // Whole-number keys out of order and repeating (each key's values found without sorting the rows).
        let t = read("table z(s, t)", "s,t,z\n2,1,4\n1,0,1\n2,0,3\n1,1,2\n").unwrap();
        assert_eq!((ints(&t, 0), ints(&t, 1)), (vec![1, 2], vec![0, 1]));
        assert!(matches!(&t.columns[0].1, ColumnData::Numbers(v) if v == &[1.0, 2.0, 3.0, 4.0]));
        // Cells lose leading and trailing whitespace as `str::trim` strips it, Unicode spaces included.
        let t = read("table p(k text) with v text", "k,v\n\u{a0}a\u{2003},\x0b b \u{e9}\t\n").unwrap();
        assert!(matches!(&t.keys[0].1, Key::Texts(l) if l == &["a"]));
        assert!(matches!(&t.columns[0].1, ColumnData::Texts(v) if v == &["b \u{e9}"]));
    }

    #[test]
    fn whole_numbers_read_as_the_float_parse_reads_them() {
        for cell in ["0", "-0", "+7", "007", "-47", "622000", "9007199254740993", "-9223372036854775808", "1e3"] {
            let want: f64 = cell.parse().unwrap();
            assert_eq!(number(cell).unwrap().to_bits(), want.to_bits(), "{cell}");
        }
    }

    #[test]
    fn bad_cells_are_refused_at_their_file_line_and_column() {
        let e = |src: &str, text: &str| read(src, text).map(|_| ()).unwrap_err();
        let long = "table p(age, term)";
        assert_eq!(
            e(long, "age,term,rate\n20,10,0.1\n\n20,15,x\n"),
            "t.csv:4:3: column 'rate': expected a number, found 'x'"
        );
        assert_eq!(
            e(long, "age,term,rate\n20.5,10,0.1\n"),
            "t.csv:2:1: column 'age': expected a whole number, found '20.5' (key 'age'; a text key is declared \
             'age text')"
        );
        assert_eq!(
            e(long, "age,term,rate\n20,10,0.1\n20,10.0,0.2\n"),
            "t.csv:3: a second row for age 20, term 10 (the first is line 2)"
        );
        assert_eq!(
            e(long, "age,term,rate\n20,10,0.1\n21,15,0.2\n"),
            "t.csv: no row for age 20, term 15 (the table needs a row for every combination of its keys)"
        );
        assert_eq!(e(long, "age,term,rate\n20,10\n"), "t.csv:2:3: the row has 2 cells but the header has 3");
        assert_eq!(
            e("table p(age, year)", "age,term,rate\n20,10,0.1\n"),
            "t.csv:1: no column 'year', which table 'p' of the model declares (the header has: age, term, rate)"
        );
        assert_eq!(
            e("table p(a) with f bool", "a,f\n1,yes\n"),
            "t.csv:2:2: column 'f': expected True or False, found 'yes'"
        );
        assert_eq!(
            e("table m(age, year across)", "age,0,x\n1,2,3\n"),
            "t.csv:1:3: column label: expected a whole number, found 'x' (key 'year'; a text key is declared 'year \
             text')"
        );
        assert_eq!(e("table p(a)", "a,b\n"), "t.csv: the table has a header but no data rows");
    }

    #[test]
    fn model_points_become_attributes_checked_cell_by_cell() {
        let d = decl("table mp(policy_id) with spec_id text, sex text");
        let p = read_points(Some(&d), "mp.csv", "policy_id,spec_id,age,sex\n1,A,47,M\n2,B,30.5,F\n").unwrap();
        let names: Vec<(&str, ValueKind)> = p.attributes.iter().map(|a| (a.name.as_str(), a.kind)).collect();
        assert_eq!(names, [("spec_id", ValueKind::Text), ("age", ValueKind::Number), ("sex", ValueKind::Text)]);
        let mut row = vec![];
        p.row(1, &mut row);
        assert!(matches!(row[..], [AttrValue::Text("B"), AttrValue::Number(30.5), AttrValue::Text("F")]));
        let e = read_points(Some(&d), "mp.csv", "policy_id,spec_id,age,sex\n1,A,4x,M\n").unwrap_err();
        assert_eq!(e, "mp.csv:2:3: column 'age': expected a number, found '4x'");
        let e = read_points(Some(&d), "mp.csv", "policy_id,spec_id,age,sex\n1,A,4,M\n1,A,5,M\n").unwrap_err();
        assert_eq!(e, "mp.csv:3:1: column 'policy_id': the policy id '1' is also row 1 (line 2)");
        // The first repeat in the file is named, with its id's first row.
        let ids = |ids: &[&str]| {
            let rows: String = ids.iter().map(|i| format!("{i},A,4,M\n\n")).collect();
            read_points(Some(&d), "mp.csv", &format!("policy_id,spec_id,age,sex\n{rows}")).map(|_| ()).unwrap_err()
        };
        let e = ids(&["a", "b", "c", "b", "a"]);
        assert_eq!(e, "mp.csv:8:1: column 'policy_id': the policy id 'b' is also row 2 (line 4)");
        let e = ids(&["x", "y", "x", "x", "y"]);
        assert_eq!(e, "mp.csv:6:1: column 'policy_id': the policy id 'x' is also row 1 (line 2)");
        // A declared column the file lacks is refused only where the model reads it.
        let p = read_points(Some(&d), "mp.csv", "policy_id,age\n1,4\n").unwrap();
        assert_eq!(p.attributes.len(), 1);
        let e = compile_projection("m.prj", "y = mp.sex\n", &p.attributes, &[], &[]).map(|_| ()).unwrap_err();
        assert!(e.starts_with("m.prj:1:8: unknown attribute 'mp.sex' (the model points have: age)"), "{e}");
        // Undeclared: numbers where every cell is one, else text.
        let p = read_points(None, "mp.csv", "id,a,b\n1,2,x\n").unwrap();
        assert_eq!(p.attributes.iter().map(|a| a.kind).collect::<Vec<_>>(), [ValueKind::Number, ValueKind::Text]);
    }

    #[test]
    fn declared_ranges_are_checked_at_each_cell() {
        let d = decl("table mp(id) with count number between 0 and 1e100, age number >= 18 and < 120, s text");
        let p = read_points(Some(&d), "mp.csv", "id,count,age,s\n1,0,18,M\n2,1e100,119.5,F\n").unwrap();
        assert_eq!(p.number("count", 1), Some(1e100));
        let e = |text: &str| read_points(Some(&d), "mp.csv", text).map(|_| ()).unwrap_err();
        assert_eq!(
            e("id,count,age,s\n1,0,18,M\n2,1e308,30,F\n"),
            "mp.csv:3:2: column 'count': 1e308 is not between 0 and 1e100"
        );
        assert_eq!(e("id,count,age,s\n1,-0.5,18,M\n"), "mp.csv:2:2: column 'count': -0.5 is not between 0 and 1e100");
        assert_eq!(e("id,count,age,s\n1,1,120,M\n"), "mp.csv:2:3: column 'age': 120 is not >= 18 and < 120");
        assert_eq!(e("id,count,age,s\n1,1,17,M\n"), "mp.csv:2:3: column 'age': 17 is not >= 18 and < 120");
        // In a table's value columns too.
        let e = read("table d(year) with zero_spot number > -1", "year,zero_spot\n0,0.01\n1,-1\n").unwrap_err();
        assert_eq!(e, "t.csv:3:2: column 'zero_spot': -1 is not > -1");
        assert!(read("table d(year) with zero_spot number > -1", "year,zero_spot\n0,-0.99\n").is_ok());
    }

    #[test]
    fn numpy_draws_are_a_table_the_model_reads() {
        let d = decl("table z(scen scenarios, t)");
        let t = numpy_normal_table(&d, "run.toml:9:5", "m.prj", 1234, &[3, 4], &[1, 0]).unwrap();
        assert_eq!((ints(&t, 0), ints(&t, 1)), (vec![1, 2, 3], vec![0, 1, 2, 3]));
        assert_eq!(scenario_ids(&d, &t), Some(vec![1, 2, 3]));
        // Row-major, the last key fastest: z[scen, t] is draw (scen − 1) × 4 + t of numpy's stream.
        let mut g = parfit_core::numpy_rng::Generator::default_rng(1234);
        let want: Vec<f64> = (0..12).map(|_| g.standard_normal()).collect();
        assert!(matches!(&t.columns[..], [(n, ColumnData::Numbers(v))] if n == "z" && v == &want));
        let src = "table z(scen scenarios, t)\nx = z[scenario, t]\n";
        let attrs = [Attribute { name: super::super::SCENARIO.into(), kind: ValueKind::Number }];
        let p = compile_projection("m.prj", src, &attrs, &[t], &[]).unwrap();
        let mut rows = [0.0; 4];
        p.runner().run(&[AttrValue::Number(2.0)], 4, Some(&mut rows)).unwrap();
        assert_eq!(rows[..], want[4..8]);
    }

    #[test]
    fn numpy_draws_that_do_not_fit_the_declaration_are_refused() {
        let e = |src: &str, size: &[usize], start: &[i64]| {
            numpy_normal_table(&decl(src), "run.toml:9:5", "m.prj", 1, size, start).map(|_| ()).unwrap_err()
        };
        assert_eq!(
            e("table z(s scenarios, t, u)", &[2, 3], &[1, 0]),
            "run.toml:9:5: table 'z' (m.prj:1:7) has 3 keys, so the draws need 3 extents in size and \
             start; given 2 and 2"
        );
        assert_eq!(
            e("table z(s, kind text)", &[2, 3], &[1, 0]),
            "run.toml:9:5: table 'z' (m.prj:1:7): key 'kind' is text, but generated draws have \
             whole-number keys"
        );
        assert_eq!(
            e("table z(s) with v number > 0", &[2], &[0]),
            "run.toml:9:5: table 'z' (m.prj:1:7): its values are the draws (one number column named \
             after the table); 'with v …' does not apply"
        );
        assert_eq!(
            e("table z(s)", &[3], &[i64::MAX - 1]),
            format!(
                "run.toml:9:5: key 's' from {} over 3 values is outside the whole numbers a key can hold",
                i64::MAX - 1
            )
        );
        assert_eq!(
            e("table z(s, t)", &[2, 0], &[0, 0]),
            "run.toml:9:5: key 't' has 0 values (each extent of size is at least 1)"
        );
        // A size beyond the memory budget (or beyond any integer) is refused before anything is allocated.
        let huge = e("table z(s, t)", &[usize::MAX, usize::MAX], &[0, 0]);
        assert!(huge.contains("more than the limit"), "{huge}");
        let big = e("table z(s, t)", &[1 << 30, 1 << 30], &[0, 0]);
        assert!(big.starts_with("run.toml:9:5: table 'z' (1073741824 × 1073741824 draws)"), "{big}");
    }

    #[test]
    fn a_wide_table_s_range_is_checked_at_every_cell_across() {
        // lifelib's mort_table.csv shape: every cell across the header is the table's one value column.
        let src = "table mort(age, duration ultimate across) with mort number between 0 and 1 missing 0";
        let t = read(src, "Age,0,1\n18,0,0.5\n19,0.25,1\n").unwrap();
        assert_eq!(t.columns[0].0, "mort");
        let e = |text: &str| read(src, text).unwrap_err();
        assert_eq!(e("Age,0,1\n18,0.1,0.2\n19,0.3,1.5\n"), "t.csv:3:3: column '1': 1.5 is not between 0 and 1");
        assert_eq!(e("Age,0,1\n18,-0.1,0.2\n"), "t.csv:2:2: column '0': -0.1 is not between 0 and 1");
        // Text labels across, and one bound.
        let src = "table s(duration ultimate, type text across) with s number >= 0";
        assert!(read(src, "duration,type_1,type_2\n0,0.1,0\n").is_ok());
        assert_eq!(
            read(src, "duration,type_1,type_2\n0,0.1,0\n1,0.05,-0.01\n").unwrap_err(),
            "t.csv:3:3: column 'type_2': -0.01 is not >= 0"
        );
        // Without a range any finite number is read, as before.
        assert!(read("table m(a, b across)", "a,0\n1,-5\n").is_ok());
    }

    #[test]
    fn declarations_are_checked_where_they_are_written() {
        let e = |src: &str| table_declarations("m.prj", src).unwrap_err();
        assert_eq!(
            e("table m(age sideways)"),
            "m.prj:1:13: 'sideways' is not a key option (text, ultimate, across, scenarios)"
        );
        assert_eq!(e("table m(a across, b across)"), "m.prj:1:7: only one key can be 'across' (the header's labels)");
        assert_eq!(e("table m(a) with b colour"), "m.prj:1:19: expected the column's kind: text, bool or number");
        assert_eq!(e("table m(a) missing x"), "m.prj:1:20: 'missing' is followed by a number");
        assert_eq!(e("table m(a) with b number between 1 and 0"), "m.prj:1:26: the range is empty: 1 is above 0");
        assert_eq!(e("table m(a) with b number > 1 and < 1"), "m.prj:1:26: the range is empty: > 1 and < 1");
        assert_eq!(e("table m(a) with b number between 1"), "m.prj:1:35: expected 'and', found the end of the line");
        assert_eq!(e("table m(a) with b number > x"), "m.prj:1:28: expected a number, found 'x'");
        assert_eq!(e("table m(a) with b number > 0 and > 1"), "m.prj:1:34: the column's lower bound is given twice");
        assert_eq!(e("table m(a)\ntable m(b)"), "m.prj:2:7: table 'm' is declared twice (first at line 1)");
        assert_eq!(
            e("table m(a text ultimate)"),
            "m.prj:1:9: a text key cannot be 'ultimate' or 'scenarios' (whole numbers only)"
        );
        // A wide table's `with` names its one value column, the table, as a number.
        let wide = "m.prj:1:39: table 'mort' runs across the header: its one value column is 'mort', a number \
                    ('with mort number RANGE')";
        assert_eq!(e("table mort(age, duration across) with rate number > 0"), wide);
        assert_eq!(e("table mort(age, duration across) with mort text"), wide);
        // `table` alone is still a name.
        assert!(table_declarations("m.prj", "table = 1\n").unwrap().is_empty());
    }

    /// A model reading its declared tables and the scenario id.
    fn program(src: &str, z: &str) -> Result<ProjectionProgram, String> {
        let decls = table_declarations("m.prj", src)?;
        let tables = vec![read_table(&decls[0], "z.csv", z)?];
        let attrs = [Attribute { name: super::super::SCENARIO.into(), kind: ValueKind::Number }];
        compile_projection("m.prj", src, &attrs, &tables, &[])
    }

    #[test]
    fn the_scenario_is_a_value_the_model_reads() {
        let src = "table z(scen scenarios, t)\nx = z[scenario, t] + scenario\n";
        let p = program(src, "scen,t,v\n1,0,10\n1,1,11\n2,0,20\n2,1,21\n").unwrap();
        let mut run = p.runner();
        let mut rows = [0.0; 2];
        run.run(&[AttrValue::Number(2.0)], 2, Some(&mut rows)).unwrap();
        assert_eq!(rows, [22.0, 23.0]);
        let e =
            program("table z(scen scenarios, t)\nx = if scenario then 1 else 0\n", "scen,t,v\n1,0,1\n").unwrap_err();
        assert_eq!(e, "m.prj:2:8: 'scenario' is a number, but a condition (true or false) is needed here");
        let e = compile_projection("m.prj", "x = scenario\n", &[], &[], &[]).map(|_| ()).unwrap_err();
        assert_eq!(e, "m.prj:1:5: 'scenario' is the run's scenario id, which this run does not give");
    }
}
