//! The values Vensim's `GET DIRECT …` and `GET XLS …` calls read from files beside the model: delimited
//! text (`.csv`, `.tab`, `.txt`: the call's second argument is the delimiter) or Excel workbooks (`.xls`,
//! `.xlsx`, `.xlsm`, `.xlsb`, `.ods`: the second argument is the sheet), told apart by the file's extension.
//!
//! A [`DataFiles`] reads each file or sheet once and answers the four kinds of call:
//! - [`DataFiles::constants`] (`GET … CONSTANTS(file, tab, cell)`): a block of numbers;
//! - [`DataFiles::series`] (`GET … DATA(file, tab, time, cell)` and `GET … LOOKUPS(…)`, read alike): times and
//!   one series per element of the target;
//! - [`DataFiles::subscript`] (`GET … SUBSCRIPT(file, tab, first, last, prefix)`): element names.
//!
//! Cells are named as in a spreadsheet (`B2`; for a CSV file too: column B is the second field, row 2 the
//! second line), or by an Excel defined name (`revenue`), which stands for its range. Every value is checked
//! where it is read; an error names the place — `data.csv:3:7` (line and character column) or
//! `input.xlsx: sheet 'Sheet1', cell C7` — why, and the value.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::PathBuf;
use std::rc::Rc;

/// Where the files a model names come from.
#[derive(Debug, Clone)]
pub enum Files {
    /// The model's directory (natively): names are paths relative to it.
    Dir(PathBuf),
    /// Files by name (the browser, or a caller that has the bytes already).
    Memory(BTreeMap<String, Vec<u8>>),
}

impl Files {
    fn bytes(&self, name: &str) -> Result<Vec<u8>, String> {
        match self {
            Files::Dir(dir) => {
                let path = dir.join(name);
                let size = std::fs::metadata(&path).map_err(|e| format!("{name}: cannot read the file: {e}"))?.len();
                parfit_core::limits::check_allocation(&format!("the data file {name}"), size as f64, 1.0)?;
                std::fs::read(&path).map_err(|e| format!("{name}: cannot read the file: {e}"))
            }
            Files::Memory(map) => {
                map.get(name).cloned().ok_or_else(|| format!("{name}: no such file among the model's data files"))
            }
        }
    }
}

/// What `GET … DATA` and `GET … LOOKUPS` read: increasing times and, for each element of the target
/// (row-major over the requested shape), its values at those times — NaN where the cell is empty (Vensim
/// interpolates across such gaps; the caller chooses). Points whose time cell is empty are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub xs: Vec<f64>,
    pub ys: Vec<Vec<f64>>,
}

/// The data files of one model, each file or sheet read once.
#[derive(Debug)]
pub struct DataFiles {
    files: Files,
    grids: HashMap<(String, String), Rc<Grid>>,
    names: HashMap<String, Rc<Vec<(String, String)>>>,
}

impl DataFiles {
    pub fn new(files: Files) -> DataFiles {
        DataFiles { files, grids: HashMap::new(), names: HashMap::new() }
    }

    /// `GET … CONSTANTS(file, tab, cell)`: the values of a target of `shape` (its subscript ranges' sizes,
    /// outermost first; `[]` for a scalar), row-major. From the cell `cell`, a vector is read along a row and
    /// a matrix with its first dimension down the rows; `cell` followed by `*` reads transposed (a vector
    /// down a column). A defined name gives the block's top-left cell.
    pub fn constants(&mut self, file: &str, tab: &str, cell: &str, shape: &[usize]) -> Result<Vec<f64>, String> {
        let (cell, transposed) = match cell.trim().strip_suffix('*') {
            Some(c) => (c.trim(), true),
            None => (cell.trim(), false),
        };
        let (grid, block) = self.locate(file, tab, cell)?;
        let (rows, cols) = block_shape(shape, file, cell)?;
        let (rows, cols) = if transposed { (cols, rows) } else { (rows, cols) };
        parfit_core::limits::check_allocation(&format!("GET CONSTANTS from {file}"), rows as f64 * cols as f64, 8.0)?;
        let (r0, c0) = block.start;
        let mut block_values = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                block_values.push(grid.number(r0 + r, c0 + c)?);
            }
        }
        if !transposed {
            return Ok(block_values);
        }
        // The block was read as `rows × cols` = the target's `cols × rows`: hand it back in the target's order.
        let mut values = Vec::with_capacity(rows * cols);
        for c in 0..cols {
            for r in 0..rows {
                values.push(block_values[r * cols + c]);
            }
        }
        Ok(values)
    }

    /// `GET … DATA(file, tab, time, cell)` and `GET … LOOKUPS(…)`: `time` is a row number (`'4'`: times
    /// across that row, from `cell`'s column on, each element's series on the rows from `cell`'s down), a
    /// column letter (`'A'`: times down that column from `cell`'s row, series in the columns from `cell`'s),
    /// or a defined name (its range holds the times; a row or a column says which way the series run).
    /// At most one dimension of `shape` may exceed one element: a call reads one row or column per element.
    pub fn series(&mut self, file: &str, tab: &str, time: &str, cell: &str, shape: &[usize]) -> Result<Series, String> {
        let n_series = series_count(shape, file, cell)?;
        let (grid, start) = self.locate(file, tab, cell.trim())?;
        let (r0, c0) = start.start;
        let time = time.trim();
        // Time cells as (row, column), in order, and whether series run across rows.
        let (time_cells, across): (Vec<(usize, usize)>, bool) = if let Ok(row) = time.parse::<usize>() {
            let row = row.checked_sub(1).ok_or_else(|| format!("{file}: the time row '{time}' is not a row"))?;
            ((c0..grid.width().max(c0)).map(|c| (row, c)).collect(), true)
        } else if let Some(col) = column_index(time) {
            ((r0..grid.height().max(r0)).map(|r| (r, col)).collect(), false)
        } else {
            let (tgrid, range) = self.locate(file, tab, time)?;
            if !Rc::ptr_eq(&tgrid, &grid) {
                return Err(format!("{file}: the times '{time}' are on another sheet than the data '{cell}'"));
            }
            let ((tr0, tc0), (tr1, tc1)) = (range.start, range.end);
            if tr0 == tr1 {
                ((tc0..=tc1).map(|c| (tr0, c)).collect(), true)
            } else if tc0 == tc1 {
                ((tr0..=tr1).map(|r| (r, tc0)).collect(), false)
            } else {
                return Err(format!("{file}: the times '{time}' are not one row or one column"));
            }
        };
        parfit_core::limits::check_allocation(
            &format!("GET DATA from {file}"),
            time_cells.len() as f64 * (n_series + 1) as f64,
            8.0,
        )?;
        let (mut xs, mut ys) = (Vec::new(), vec![Vec::new(); n_series]);
        for (k, &(tr, tc)) in time_cells.iter().enumerate() {
            // Vensim leaves out a point whose time cell is empty or not a number (test_get_with_missing_values_xlsx).
            let Some(x) = grid.optional_number(tr, tc).ok().flatten() else { continue };
            if let Some(&previous) = xs.last()
                && x <= previous
            {
                return Err(format!("{}: the times must increase, value '{}'", grid.place(tr, tc), grid.text(tr, tc)));
            }
            xs.push(x);
            for (s, series) in ys.iter_mut().enumerate() {
                let (r, c) = if across { (r0 + s, c0 + k) } else { (r0 + k, c0 + s) };
                series.push(grid.optional_number(r, c)?.unwrap_or(f64::NAN));
            }
        }
        if xs.is_empty() {
            return Err(format!("{file}: no times at '{time}' for the data at '{cell}'"));
        }
        Ok(Series { xs, ys })
    }

    /// `GET … SUBSCRIPT(file, tab, first, last, prefix)`: the subscript range's element names, `prefix`
    /// followed by each non-empty cell's text from `first` to `last` (a row or a column; a block row by row).
    pub fn subscript(
        &mut self,
        file: &str,
        tab: &str,
        first: &str,
        last: &str,
        prefix: &str,
    ) -> Result<Vec<String>, String> {
        let (grid, from) = self.locate(file, tab, first.trim())?;
        let Some((r1, c1)) = cell_index(last.trim()) else {
            return Err(format!("{file}: the last cell '{last}' is not a cell reference such as 'B7'"));
        };
        let (r0, c0) = from.start;
        if r1 < r0 || c1 < c0 {
            return Err(format!("{file}: the last cell '{last}' comes before the first cell '{first}'"));
        }
        let mut names = Vec::new();
        for r in r0..=r1.min(grid.height().max(r0)) {
            for c in c0..=c1.min(grid.width().max(c0)) {
                if let Some(text) = grid.label(r, c) {
                    names.push(format!("{prefix}{text}"));
                }
            }
        }
        Ok(names)
    }

    /// A data variable's values from a Vensim output file (tab-separated, or `.csv`), as PySD's `data_files`
    /// gives them to a model's data variables without an equation: `Time` in the first cell, then the
    /// variables' names across the first row (times down the first column) or down the first column (times
    /// across the first row), named as Vensim writes them (`var[a,b]`). One series; `None` when the file has
    /// no column (or row) of that name.
    pub fn output_series(&mut self, file: &str, variable: &str) -> Result<Option<Series>, String> {
        let delimiter = if file.to_lowercase().ends_with(".csv") { "," } else { "\\t" };
        let grid = self.grid(file, delimiter)?;
        if !matches!(grid.cell(0, 0), Cell::Text(t) if t.trim().eq_ignore_ascii_case("time")) {
            return Err(format!(
                "{}: a Vensim output file starts with 'Time', value '{}'",
                grid.place(0, 0),
                grid.text(0, 0)
            ));
        }
        let across = matches!(grid.cell(0, 1), Cell::Text(_));
        // (row, column) of the k-th name, time or value along a line.
        let at = |line: usize, k: usize| if across { (k, line) } else { (line, k) };
        let length = if across { grid.height() } else { grid.width() };
        let wanted = output_name(variable);
        let Some(line) = (1..if across { grid.width() } else { grid.height() }).find(|&line| {
            let (r, c) = at(line, 0);
            matches!(grid.cell(r, c), Cell::Text(name) if output_name(name) == wanted)
        }) else {
            return Ok(None);
        };
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for k in 1..length {
            let ((tr, tc), (r, c)) = (at(0, k), at(line, k));
            let Some(x) = grid.optional_number(tr, tc)? else { continue };
            if let Some(&previous) = xs.last()
                && x <= previous
            {
                return Err(format!("{}: the times must increase, value '{}'", grid.place(tr, tc), grid.text(tr, tc)));
            }
            xs.push(x);
            ys.push(grid.optional_number(r, c)?.unwrap_or(f64::NAN));
        }
        Ok(Some(Series { xs, ys: vec![ys] }))
    }

    /// The grid `file` (and `tab`) holds and the range `reference` (a cell or a defined name) names there.
    fn locate(&mut self, file: &str, tab: &str, reference: &str) -> Result<(Rc<Grid>, CellRange), String> {
        if let Some((row, col)) = cell_index(reference) {
            let grid = self.grid(file, tab)?;
            return Ok((grid, CellRange { start: (row, col), end: (row, col) }));
        }
        if !is_workbook(file) {
            return Err(format!("{file}: '{reference}' is not a cell reference such as 'B2'"));
        }
        let names = self.defined_names(file)?;
        let wanted = reference.to_lowercase();
        let mut found = names.iter().filter(|(name, _)| name.trim().to_lowercase() == wanted).collect::<Vec<_>>();
        // A name may be defined per sheet: the one on the call's sheet wins.
        found.sort_by_key(|(_, formula)| !formula_sheet(formula).is_some_and(|s| s.eq_ignore_ascii_case(tab)));
        let Some((_, formula)) = found.first() else {
            return Err(format!(
                "{file}: '{reference}' is neither a cell reference such as 'B2' nor a name defined in the workbook"
            ));
        };
        let (sheet, range) = parse_formula(formula).ok_or_else(|| {
            format!("{file}: the name '{reference}' stands for '{formula}', which is not a range of cells")
        })?;
        let grid = self.grid(file, &sheet)?;
        Ok((grid, range))
    }

    fn grid(&mut self, file: &str, tab: &str) -> Result<Rc<Grid>, String> {
        let key = (file.to_string(), tab.to_string());
        if let Some(grid) = self.grids.get(&key) {
            return Ok(grid.clone());
        }
        let bytes = self.files.bytes(file)?;
        let grid = Rc::new(if is_workbook(file) {
            Grid::from_sheet(file, tab, bytes)?
        } else {
            Grid::from_text(file, delimiter(file, tab)?, &bytes)?
        });
        self.grids.insert(key, grid.clone());
        Ok(grid)
    }

    fn defined_names(&mut self, file: &str) -> Result<Rc<Vec<(String, String)>>, String> {
        if let Some(names) = self.names.get(file) {
            return Ok(names.clone());
        }
        let bytes = self.files.bytes(file)?;
        let names =
            Rc::new(guarded(file, || Ok(calamine::Reader::defined_names(&open_workbook(file, bytes)?).to_vec()))?);
        self.names.insert(file.to_string(), names.clone());
        Ok(names)
    }
}

/// A variable's name in a Vensim output file as Vensim identifies it: quotes dropped, each part (the name,
/// each subscript element) compared as names are (`"Var_1" [ A , b ]` is `var 1[a,b]`).
fn output_name(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(name);
    match name.split_once('[') {
        Some((base, elements)) => {
            let elements = elements.trim_end().trim_end_matches(']').split(',').map(crate::lexer::normalise);
            format!("{}[{}]", crate::lexer::normalise(base), elements.collect::<Vec<_>>().join(","))
        }
        None => crate::lexer::normalise(name),
    }
}

fn is_workbook(file: &str) -> bool {
    let lower = file.to_lowercase();
    [".xls", ".xlsx", ".xlsm", ".xlsb", ".ods"].iter().any(|ext| lower.ends_with(ext))
}

/// A delimited file's delimiter, as the call gives it: one character, or `\t` written out.
fn delimiter(file: &str, tab: &str) -> Result<char, String> {
    if tab == "\\t" {
        return Ok('\t');
    }
    let mut chars = tab.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!(
            "{file}: the delimiter '{tab}' is not one character (a text file's tab argument is its delimiter)"
        )),
    }
}

/// A range of cells, zero-based (row, column), both ends included.
#[derive(Debug, Clone, Copy)]
struct CellRange {
    start: (usize, usize),
    end: (usize, usize),
}

/// The largest row and column a spreadsheet has (Excel's 1048576 × XFD).
const MAX_ROW: usize = 1 << 20;
const MAX_COL: usize = 1 << 14;

/// A column's letters (`A`, `AB`), zero-based.
fn column_index(letters: &str) -> Option<usize> {
    if letters.is_empty() || letters.len() > 3 || !letters.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let n = letters.to_ascii_uppercase().bytes().fold(0usize, |n, b| n * 26 + usize::from(b - b'A' + 1));
    (n <= MAX_COL).then(|| n - 1)
}

/// A cell reference (`B2`, `$B$2`), zero-based (row, column).
fn cell_index(reference: &str) -> Option<(usize, usize)> {
    let reference = reference.replace('$', "");
    let split = reference.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = reference.split_at(split);
    let col = column_index(letters)?;
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let row = digits.parse::<usize>().ok().filter(|&r| (1..=MAX_ROW).contains(&r))?;
    Some((row - 1, col))
}

/// The sheet of a defined name's formula (`'My sheet'!$A$1:$B$4` → `My sheet`).
fn formula_sheet(formula: &str) -> Option<String> {
    let (sheet, _) = formula.trim().trim_start_matches('=').rsplit_once('!')?;
    let sheet = sheet.trim();
    Some(match sheet.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(quoted) => quoted.replace("''", "'"),
        None => sheet.to_string(),
    })
}

/// A defined name's formula as a sheet and a range of cells, when it is one.
fn parse_formula(formula: &str) -> Option<(String, CellRange)> {
    let sheet = formula_sheet(formula)?;
    let (_, cells) = formula.trim().rsplit_once('!')?;
    let (first, last) = cells.split_once(':').unwrap_or((cells, cells));
    let (start, end) = (cell_index(first.trim())?, cell_index(last.trim())?);
    (start.0 <= end.0 && start.1 <= end.1).then_some((sheet, CellRange { start, end }))
}

/// The rows and columns of a constants block for a target of `shape` (dimensions of one element do not
/// count: `x[a1, dim]` reads a row like `x[dim]`).
fn block_shape(shape: &[usize], file: &str, cell: &str) -> Result<(usize, usize), String> {
    let dims = shape.iter().copied().filter(|&n| n != 1).collect::<Vec<_>>();
    match dims[..] {
        [] if shape.contains(&0) => Ok((0, 0)),
        [] => Ok((1, 1)),
        [n] => Ok((1, n)),
        [rows, cols] => Ok((rows, cols)),
        _ => Err(format!(
            "{file}: GET CONSTANTS at '{cell}' reads at most two dimensions per call, the target has {shape:?} (define it per element of its first dimensions)"
        )),
    }
}

/// How many series a `GET … DATA` call for a target of `shape` reads.
fn series_count(shape: &[usize], file: &str, cell: &str) -> Result<usize, String> {
    let dims = shape.iter().copied().filter(|&n| n != 1).collect::<Vec<_>>();
    match dims[..] {
        [] if shape.contains(&0) => Ok(0),
        [] => Ok(1),
        [n] => Ok(n),
        _ => Err(format!(
            "{file}: GET DATA at '{cell}' reads at most one dimension per call, the target has {shape:?} (define it per element of its first dimensions)"
        )),
    }
}

fn open_workbook(file: &str, bytes: Vec<u8>) -> Result<calamine::Sheets<Cursor<Vec<u8>>>, String> {
    calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| format!("{file}: not a readable workbook: {e}"))
}

/// Runs a read of a workbook. calamine's readers can panic on a damaged file (its `.xls` reader did on one
/// in ten of the test files with a few bytes changed): natively that panic becomes the file's error.
#[cfg(not(target_arch = "wasm32"))]
fn guarded<T>(file: &str, read: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(format!("{file}: the workbook is damaged (its reader stopped on it)")))
}

/// On wasm32 a panic cannot be caught, so the binary `.xls` format, whose reader panics on damaged files, is
/// refused; `.xlsx` (zip and XML, whose reader stopped on none of the damaged test files) is read.
#[cfg(target_arch = "wasm32")]
fn guarded<T>(file: &str, read: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    if file.to_lowercase().ends_with(".xls") {
        return Err(format!(
            "{file}: the binary .xls format is read natively only (its reader can stop on a damaged file, which the \
             browser cannot recover from): save the workbook as .xlsx"
        ));
    }
    read()
}

/// One cell's content.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Empty,
    Number(f64),
    Text(String),
}

/// Where a grid's cells come from, to place an error.
#[derive(Debug)]
enum Origin {
    /// A text file (row k is line k + 1): each field's character column (1-based), by line.
    Text {
        file: String,
        columns: Vec<Vec<usize>>,
    },
    Sheet {
        file: String,
        sheet: String,
    },
}

/// A sheet or text file's non-empty cells by (row, column) from A1, zero-based: sparse, as a sheet may have
/// one cell far from the others.
#[derive(Debug)]
struct Grid {
    cells: HashMap<(usize, usize), Cell>,
    /// One past the last row and column that hold a cell.
    height: usize,
    width: usize,
    origin: Origin,
}

impl Grid {
    fn from_sheet(file: &str, sheet: &str, bytes: Vec<u8>) -> Result<Grid, String> {
        let (name, range) = guarded(file, || {
            let mut workbook = open_workbook(file, bytes)?;
            let names = calamine::Reader::sheet_names(&workbook);
            let Some(name) = names
                .iter()
                .find(|n| n.as_str() == sheet)
                .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(sheet)))
                .cloned()
            else {
                return Err(format!("{file}: no sheet '{sheet}' (the workbook has {})", names.join(", ")));
            };
            let range = calamine::Reader::worksheet_range(&mut workbook, &name)
                .map_err(|e| format!("{file}: sheet '{name}': {e}"))?;
            Ok((name, range))
        })?;
        let (r0, c0) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
        let mut grid = Grid {
            cells: HashMap::new(),
            height: 0,
            width: 0,
            origin: Origin::Sheet { file: file.to_string(), sheet: name },
        };
        for (r, c, value) in range.used_cells() {
            let cell = match value {
                calamine::Data::Empty => continue,
                calamine::Data::String(s) if s.trim().is_empty() => continue,
                calamine::Data::Int(i) => Cell::Number(*i as f64),
                calamine::Data::Float(x) => Cell::Number(*x),
                calamine::Data::DateTime(d) => Cell::Number(d.as_f64()),
                other => Cell::Text(other.to_string()),
            };
            grid.insert(r0 + r, c0 + c, cell);
        }
        Ok(grid)
    }

    fn insert(&mut self, row: usize, col: usize, cell: Cell) {
        self.height = self.height.max(row + 1);
        self.width = self.width.max(col + 1);
        self.cells.insert((row, col), cell);
    }

    /// A delimited text file: fields may be quoted with `"` (a doubled `""` inside is one quote).
    fn from_text(file: &str, delimiter: char, bytes: &[u8]) -> Result<Grid, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("{file}: not UTF-8 text: {e}"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Old Mac files end lines with a lone CR.
        let text = if text.contains('\r') { text.replace("\r\n", "\n").replace('\r', "\n") } else { text.to_string() };
        let mut grid = Grid {
            cells: HashMap::new(),
            height: 0,
            width: 0,
            origin: Origin::Text { file: file.to_string(), columns: Vec::new() },
        };
        let mut columns = Vec::new();
        for (row, line) in text.lines().enumerate() {
            let fields = split_fields(line, delimiter)
                .map_err(|column| format!("{file}:{}:{column}: a quoted field does not end on its line", row + 1))?;
            let mut starts = Vec::with_capacity(fields.len());
            for (col, (column, field)) in fields.into_iter().enumerate() {
                starts.push(column);
                let field = field.trim();
                if !field.is_empty() {
                    let cell = field.parse::<f64>().map_or_else(|_| Cell::Text(field.to_string()), Cell::Number);
                    grid.insert(row, col, cell);
                }
            }
            columns.push(starts);
        }
        grid.origin = Origin::Text { file: file.to_string(), columns };
        Ok(grid)
    }

    fn height(&self) -> usize {
        self.height
    }

    fn width(&self) -> usize {
        self.width
    }

    fn cell(&self, row: usize, col: usize) -> &Cell {
        self.cells.get(&(row, col)).unwrap_or(&Cell::Empty)
    }

    /// The cell's place in the user's terms.
    fn place(&self, row: usize, col: usize) -> String {
        match &self.origin {
            Origin::Sheet { file, sheet } => format!("{file}: sheet '{sheet}', cell {}", cell_name(row, col)),
            Origin::Text { file, columns } => {
                let line = row + 1;
                match columns.get(row).and_then(|c| c.get(col)) {
                    Some(column) => format!("{file}:{line}:{column}"),
                    None => format!("{file}:{line}: field {} (cell {})", col + 1, cell_name(row, col)),
                }
            }
        }
    }

    fn text(&self, row: usize, col: usize) -> String {
        match self.cell(row, col) {
            Cell::Empty => String::new(),
            Cell::Number(x) => x.to_string(),
            Cell::Text(s) => s.clone(),
        }
    }

    /// A finite number, or `None` for an empty cell.
    fn optional_number(&self, row: usize, col: usize) -> Result<Option<f64>, String> {
        match self.cell(row, col) {
            Cell::Empty => Ok(None),
            Cell::Number(x) if x.is_finite() => Ok(Some(*x)),
            Cell::Number(x) => Err(format!("{}: not a finite number, value '{x}'", self.place(row, col))),
            Cell::Text(s) => Err(format!("{}: not a number, value '{s}'", self.place(row, col))),
        }
    }

    fn number(&self, row: usize, col: usize) -> Result<f64, String> {
        self.optional_number(row, col)?
            .ok_or_else(|| format!("{}: the cell is empty, a number was expected", self.place(row, col)))
    }

    /// A cell's text as a subscript element's name (an integral number without a decimal point).
    fn label(&self, row: usize, col: usize) -> Option<String> {
        match self.cell(row, col) {
            Cell::Empty => None,
            Cell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(format!("{}", *x as i64)),
            Cell::Number(x) => Some(x.to_string()),
            Cell::Text(s) => Some(s.clone()),
        }
    }
}

/// A line's fields and the character column (1-based) each starts at; `Err(column)` for a quote left open.
fn split_fields(line: &str, delimiter: char) -> Result<Vec<(usize, String)>, usize> {
    let mut fields = Vec::new();
    let (mut field, mut start, mut quoted) = (String::new(), 1, false);
    let mut chars = line.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        if quoted {
            if c != '"' {
                field.push(c);
            } else if chars.next_if(|&(_, next)| next == '"').is_some() {
                field.push('"');
            } else {
                quoted = false;
            }
        } else if c == '"' && field.trim().is_empty() {
            quoted = true;
        } else if c == delimiter {
            fields.push((start, std::mem::take(&mut field)));
            start = i + 2;
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err(start);
    }
    fields.push((start, field));
    Ok(fields)
}

/// `(1, 2)` → `C2`.
fn cell_name(row: usize, col: usize) -> String {
    let mut letters = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        letters.push(char::from(b'A' + ((n - 1) % 26) as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect::<String>() + &(row + 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The test-models files these tests read, compiled in so that they run on wasm32 too.
    fn files(entries: &[(&str, &[u8])]) -> DataFiles {
        DataFiles::new(Files::Memory(entries.iter().map(|(name, bytes)| (name.to_string(), bytes.to_vec())).collect()))
    }

    const ARGS_3D: &[u8] = include_bytes!("../tests/test-models/tests/get_data_args_3d_xls/input.xls");
    const MISSING: &[u8] = include_bytes!("../tests/test-models/tests/get_with_missing_values_xlsx/input.xlsx");
    const MIXED: &[u8] = include_bytes!("../tests/test-models/tests/get_mixed_definitions/input.xlsx");
    const CELLRANGE: &[u8] = include_bytes!("../tests/test-models/tests/get_xls_cellrange/inputs.xlsx");
    const SUBSCRIPT_3D: &[u8] = include_bytes!("../tests/test-models/tests/get_subscript_3d_arrays_xls/input.xls");
    const INCOMPLETE: &[u8] =
        include_bytes!("../tests/test-models/tests/get_constants_incomplete_subscript/inputs.xls");

    #[test]
    #[cfg_attr(target_arch = "wasm32", ignore = "the .xls reader is native only")]
    fn xls_data_across_rows_one_series_per_row() {
        // test_get_data_args_3d_xls: `data[A, Rows] := GET XLS DATA('input.xls', 'Sheet1', '4', 'C5')`.
        let mut data = files(&[("input.xls", ARGS_3D)]);
        let series = data.series("input.xls", "Sheet1", "4", "C5", &[1, 2]).unwrap();
        assert_eq!(series.xs, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
        assert_eq!(series.ys, [vec![0.0, -2.0, 10.0, 1.0, -5.0, 0.0, 5.0], vec![4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 2.0]]);
        let b = data.series("input.xls", "Sheet1", "4", "C7", &[2]).unwrap();
        assert_eq!(b.ys[1], [0.0, 0.0, 1.0, 2.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn xlsx_missing_times_are_left_out_and_missing_values_are_nan() {
        // test_get_with_missing_values_xlsx: row 10's times have an empty cell and the text 'nonvalid'; Vensim
        // skips both points (its output interpolates from time 2 to time 4).
        let mut data = files(&[("input.xlsx", MISSING)]);
        let lookup = data.series("input.xlsx", "Hoja1", "10", "A9", &[]).unwrap();
        assert_eq!(lookup.xs, [1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(lookup.ys, [vec![10.0, 11.0, 29.0, 10.0, 18.0, 17.0, 61.0, 61.0]]);
        let gappy = data.series("input.xlsx", "Hoja1", "1", "C5", &[2]).unwrap();
        assert_eq!(gappy.xs, [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        let a = &gappy.ys[0];
        assert!(a[0].is_nan() && a[3].is_nan() && a[7].is_nan() && a[8].is_nan());
        assert_eq!((a[1], a[2], a[4], a[5], a[6]), (2.0, 4.0, 4.0, 5.0, 3.0));
        assert_eq!(gappy.ys[1][0], 3.0);
        assert!(gappy.ys[1][1].is_nan());
    }

    #[test]
    fn defined_names_give_times_data_and_constants() {
        // test_get_mixed_definitions: `time` is a row (E2:I2), `data_dim` a block (E6:I9), `var_dim` a column.
        let mut data = files(&[("input.xlsx", MIXED)]);
        let series = data.series("input.xlsx", "Sheet2", "time", "data_dim", &[4, 1]).unwrap();
        assert_eq!(series.xs, [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(series.ys[3], [61.0, 62.0, 63.0, 64.0, 65.0]);
        assert_eq!(data.constants("input.xlsx", "Sheet2", "var_dim*", &[4, 1]).unwrap(), [30.0, 40.0, 50.0, 60.0]);
        assert_eq!(data.constants("input.xlsx", "Sheet2", "var_d3", &[]).unwrap(), [20.0]);
        // `Variable[ext const, DimAB] = GET DIRECT CONSTANTS('input.xlsx', 'Sheet1', 'C8*')`: down column C.
        assert_eq!(data.constants("input.xlsx", "Sheet1", "C8*", &[1, 2]).unwrap(), [10.0, 11.0]);
        // test_get_xls_cellrange: names per sheet, and times down a column.
        let mut data = files(&[("inputs.xlsx", CELLRANGE)]);
        let local = data.series("inputs.xlsx", "Local", "Time2", "value2", &[]).unwrap();
        assert_eq!((local.xs.len(), local.ys[0][5]), (6, 60.0));
        let down = data.series("inputs.xlsx", "Global", "Timev", "valuev", &[]).unwrap();
        assert_eq!((down.xs, &down.ys[0]), (vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", ignore = "the .xls reader is native only")]
    fn constants_blocks_row_major_and_transposed() {
        // test_get_constants_incomplete_subscript: `var[dim, dim2] = GET DIRECT CONSTANTS('inputs.xls', 'tab1', 'B5')`.
        let mut data = files(&[("inputs.xls", INCOMPLETE)]);
        assert_eq!(data.constants("inputs.xls", "tab1", "B5", &[3, 2]).unwrap(), [0.1, 0.2, 0.9, 0.3, 0.4, 0.4]);
        assert_eq!(data.constants("inputs.xls", "tab1", "B5*", &[2, 3]).unwrap(), [0.1, 0.9, 0.4, 0.2, 0.3, 0.4]);
        assert_eq!(data.constants("inputs.xls", "tab1", "B2", &[3]).unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(data.constants("inputs.xls", "tab1", "B11", &[]).unwrap(), [5.0]);
        let empty = data.constants("inputs.xls", "tab1", "B5", &[3, 3]).unwrap_err();
        assert_eq!(empty, "inputs.xls: sheet 'tab1', cell D5: the cell is empty, a number was expected");
        let text = data.constants("inputs.xls", "tab1", "A5", &[]).unwrap_err();
        assert_eq!(text, "inputs.xls: sheet 'tab1', cell A5: not a number, value 'var'");
        let three = data.constants("inputs.xls", "tab1", "B5", &[2, 3, 2]).unwrap_err();
        assert!(three.contains("at most two dimensions"), "{three}");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", ignore = "the .xls reader is native only")]
    fn subscript_names_from_cells() {
        let mut data = files(&[("input.xls", SUBSCRIPT_3D)]);
        assert_eq!(data.subscript("input.xls", "Sheet1", "C3", "D3", "Depth").unwrap(), ["Depth1", "Depth2"]);
        assert_eq!(data.subscript("input.xls", "Sheet1", "B4", "B6", "Entry").unwrap(), ["Entry1", "Entry2", "Entry3"]);
        let backwards = data.subscript("input.xls", "Sheet1", "B6", "B4", "x").unwrap_err();
        assert!(backwards.contains("comes before"), "{backwards}");
    }

    #[test]
    fn delimited_text_cells_quotes_and_places() {
        let across = "time,0,1,2\nx,\"1\",2,3\ny,4,,6\n";
        let down = "t\tv\n0\t5\n1\tfive\n";
        let mut data = files(&[("across.csv", across.as_bytes()), ("down.tab", down.as_bytes())]);
        let series = data.series("across.csv", ",", "1", "B2", &[2]).unwrap();
        assert_eq!(series.xs, [0.0, 1.0, 2.0]);
        assert_eq!(series.ys[0], [1.0, 2.0, 3.0]);
        assert!(series.ys[1][1].is_nan());
        assert_eq!(data.constants("across.csv", ",", "B2", &[3]).unwrap(), [1.0, 2.0, 3.0]);
        let err = data.series("down.tab", "\\t", "A", "B2", &[]).unwrap_err();
        assert_eq!(err, "down.tab:3:3: not a number, value 'five'");
        let err = data.constants("across.csv", ",", "A1", &[]).unwrap_err();
        assert_eq!(err, "across.csv:1:1: not a number, value 'time'");
        let err = data.constants("across.csv", ";;", "A1", &[]).unwrap_err();
        assert!(err.contains("is not one character"), "{err}");
        let err = data.constants("across.csv", ",", "total", &[]).unwrap_err();
        assert_eq!(err, "across.csv: 'total' is not a cell reference such as 'B2'");
        let open = files(&[("q.csv", b"1,\"2\n")]).constants("q.csv", ",", "A1", &[]).unwrap_err();
        assert_eq!(open, "q.csv:1:3: a quoted field does not end on its line");
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", ignore = "the .xls reader is native only")]
    fn missing_files_sheets_names_and_bad_times_are_errors() {
        let mut data = files(&[("input.xls", ARGS_3D), ("bad.xlsx", b"not a zip"), ("dec.csv", b"1,1,2\n5,6,7\n")]);
        let file = data.constants("other.xls", "Sheet1", "A1", &[]).unwrap_err();
        assert_eq!(file, "other.xls: no such file among the model's data files");
        let sheet = data.constants("input.xls", "Sheet9", "A1", &[]).unwrap_err();
        assert_eq!(sheet, "input.xls: no sheet 'Sheet9' (the workbook has Sheet1)");
        let name = data.constants("input.xls", "Sheet1", "revenue", &[]).unwrap_err();
        assert!(name.contains("nor a name defined in the workbook"), "{name}");
        assert!(
            data.constants("bad.xlsx", "Sheet1", "A1", &[])
                .unwrap_err()
                .starts_with("bad.xlsx: not a readable workbook")
        );
        let order = data.series("dec.csv", ",", "1", "A2", &[]).unwrap_err();
        assert_eq!(order, "dec.csv:1:3: the times must increase, value '1'");
        let no_times = data.series("input.xls", "Sheet1", "1", "C5", &[]).unwrap_err();
        assert!(no_times.contains("no times"), "{no_times}");
    }

    #[test]
    fn vensim_output_files_give_data_variables() {
        // test_data_from_other_model reads its data variables from another model's output (PySD: data_files).
        const OTHER: &[u8] = include_bytes!("../tests/test-models/tests/data_from_other_model/data.tab");
        let mut data = files(&[("data.tab", OTHER), ("across.csv", b"Time,0,1,2\r\"x_1 \"[ A ],5,,7\r")]);
        let series = data.output_series("data.tab", "Var 2dim[ b, D ]").unwrap().unwrap();
        assert_eq!((series.xs.len(), &series.xs[..3]), (51, &[0.0, 1.0, 2.0][..]));
        assert_eq!(&series.ys[0][..3], [3.0, 2.5, 2.5]);
        assert_eq!(data.output_series("data.tab", "var 0dim").unwrap().unwrap().ys[0][..3], [1.0, 3.0, 5.0]);
        assert_eq!(data.output_series("data.tab", "var 9dim").unwrap(), None);
        let across = data.output_series("across.csv", "x 1[a]").unwrap().unwrap();
        assert_eq!(across.xs, [0.0, 1.0, 2.0]);
        assert!(across.ys[0][1].is_nan() && across.ys[0][2] == 7.0);
        let err = files(&[("x.tab", b"t\ta\n0\t1\n")]).output_series("x.tab", "a").unwrap_err();
        assert_eq!(err, "x.tab:1:1: a Vensim output file starts with 'Time', value 't'");
    }

    #[test]
    fn cell_references() {
        assert_eq!(cell_index("B2"), Some((1, 1)));
        assert_eq!(cell_index("$AB$10"), Some((9, 27)));
        assert_eq!(cell_index("xfd1048576"), Some((1048575, 16383)));
        assert_eq!(cell_index("XFE1"), None);
        assert_eq!(cell_index("A0"), None);
        assert_eq!(cell_index("A1B"), None);
        assert_eq!(cell_index("12"), None);
        assert_eq!(cell_name(9, 27), "AB10");
        assert_eq!(
            parse_formula("'My ''s'!$A$1:$B$4").map(|(s, r)| (s, r.start, r.end)),
            Some(("My 's".into(), (0, 0), (3, 1)))
        );
    }

    #[test]
    #[cfg_attr(target_arch = "wasm32", ignore = "the .xls reader is native only")]
    fn a_damaged_workbook_is_an_error() {
        // calamine's .xls reader panics on this file cut short; the panic is the file's error.
        let mut data = files(&[("cut.xls", &ARGS_3D[..513])]);
        let err = data.constants("cut.xls", "Sheet1", "C4", &[]).unwrap_err();
        assert_eq!(err, "cut.xls: the workbook is damaged (its reader stopped on it)");
        let mut data = files(&[("cut.xlsx", &MIXED[..2000])]);
        assert!(data.constants("cut.xlsx", "Sheet2", "var_d3", &[]).unwrap_err().starts_with("cut.xlsx: "));
    }

    #[cfg(target_arch = "wasm32")]
    #[test]
    fn the_binary_xls_format_is_refused_in_the_browser() {
        let err = files(&[("input.xls", ARGS_3D)]).constants("input.xls", "Sheet1", "C4", &[]).unwrap_err();
        assert!(err.starts_with("input.xls: the binary .xls format is read natively only"), "{err}");
    }

    #[test]
    fn a_sheet_is_read_sparsely() {
        // One cell at row 1048576, column XFD: as cheap as any other sheet.
        let mut grid = Grid {
            cells: HashMap::new(),
            height: 0,
            width: 0,
            origin: Origin::Text { file: "f.csv".into(), columns: Vec::new() },
        };
        grid.insert(MAX_ROW - 1, MAX_COL - 1, Cell::Number(7.0));
        assert_eq!((grid.height(), grid.width(), grid.number(MAX_ROW - 1, MAX_COL - 1)), (1 << 20, 1 << 14, Ok(7.0)));
        assert_eq!(grid.place(0, 2), "f.csv:1: field 3 (cell C1)");
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_directory_is_a_source() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test-models/tests/get_data_args_3d_xls");
        let mut data = DataFiles::new(Files::Dir(dir));
        assert_eq!(data.constants("input.xls", "Sheet1", "C4", &[2]).unwrap(), [0.0, 5.0]);
        assert!(
            data.constants("absent.xls", "Sheet1", "C4", &[])
                .unwrap_err()
                .starts_with("absent.xls: cannot read the file")
        );
    }
}
