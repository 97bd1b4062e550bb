//! Subscript ranges: their elements (numbered ranges expanded, subranges taken in), equivalences and
//! mappings, and the questions lowering asks of them: what a written subscript names, which range a
//! variable's position runs over, and which element of one range corresponds to an element of another.

use std::collections::{HashMap, HashSet};

use crate::expr::Sub;
use crate::lexer::Located;
use crate::parser::{Members, RangeDef};

/// A subscript range.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub text: String,
    /// Element keys, in order.
    pub elements: Vec<String>,
    /// Ranges this one maps to: the target, and the target's element for each of this range's elements.
    pub mappings: Vec<(usize, Vec<String>)>,
}

/// What a written subscript names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Named<'s> {
    Range(usize),
    Element(&'s str),
}

#[derive(Debug, Default)]
pub(crate) struct Subscripts {
    pub ranges: Vec<Range>,
    by_key: HashMap<String, usize>,
    /// Element key → the element as first written.
    element_text: HashMap<String, String>,
}

/// The most elements a model's subscript ranges may have together.
const MAX_ELEMENTS: usize = 1_000_000;

impl Subscripts {
    /// Build the ranges from their definitions, in any order (a range may take in or be equivalent to one
    /// defined later). `external` gives the elements of a `GET … SUBSCRIPT` range.
    pub fn new(
        defs: &[(&RangeDef, usize)],
        mut external: impl FnMut(&RangeDef) -> Result<Vec<Sub>, Located>,
    ) -> Result<Subscripts, Located> {
        let mut s = Subscripts::default();
        for (d, _) in defs {
            if s.by_key.insert(d.key.clone(), s.ranges.len()).is_some() {
                return Err(Located::new(d.at, format!("the subscript range '{}' is defined twice", d.name)));
            }
            s.ranges.push(Range { text: d.name.clone(), elements: Vec::new(), mappings: Vec::new() });
        }
        // Each definition's members, read once.
        let members = defs
            .iter()
            .map(|(d, _)| match &d.members {
                Members::List(list) => Ok(list.clone()),
                Members::Equivalent(other) => Ok(vec![other.clone()]),
                Members::Get(_) => external(d),
            })
            .collect::<Result<Vec<Vec<Sub>>, Located>>()?;
        // Resolve each definition after the ranges it names, depth first with an explicit stack (a chain of
        // definitions as long as the file allows neither recurses nor takes a pass per link); a range met again
        // while its own members are being resolved is a circle.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; defs.len()];
        let mut total = 0usize;
        for root in 0..defs.len() {
            if marks[root] != Mark::New {
                continue;
            }
            marks[root] = Mark::Open;
            let mut stack = vec![(root, 0usize)];
            while let Some((k, next)) = stack.last_mut() {
                let (k, d) = (*k, defs[*k].0);
                if let Some(m) = members[k].get(*next) {
                    *next += 1;
                    let Some(r) = self_range(&s.by_key, m) else { continue };
                    match marks[r] {
                        _ if r == k => {
                            let message = format!("the subscript range '{}' contains itself", d.name);
                            return Err(Located::new(m.at, message));
                        }
                        Mark::New => {
                            marks[r] = Mark::Open;
                            stack.push((r, 0));
                        }
                        Mark::Open => {
                            let (d, _) = defs[r];
                            return Err(Located::new(
                                d.at,
                                format!("the subscript range '{}' is defined in a circle", d.name),
                            ));
                        }
                        Mark::Done => {}
                    }
                    continue;
                }
                let mut elements = Vec::new();
                for m in &members[k] {
                    match self_range(&s.by_key, m) {
                        Some(r) => elements.extend(s.ranges[r].elements.iter().cloned()),
                        None => {
                            s.element_text.entry(m.key.clone()).or_insert_with(|| m.text.clone());
                            elements.push(m.key.clone());
                        }
                    }
                }
                let mut seen = HashSet::new();
                elements.retain(|e| seen.insert(e.clone()));
                total += elements.len();
                if total > MAX_ELEMENTS {
                    return Err(Located::new(d.at, format!("more than {MAX_ELEMENTS} subscript elements in all")));
                }
                s.ranges[k].elements = elements;
                marks[k] = Mark::Done;
                stack.pop();
            }
        }
        for (k, (d, _)) in defs.iter().enumerate() {
            if let Members::Equivalent(other) = &d.members {
                let target = s.range_of(other)?;
                let elements = s.ranges[target].elements.clone();
                s.ranges[k].mappings.push((target, elements));
            }
            for m in &d.mappings {
                let target = s.range_of(&m.target)?;
                let own = s.ranges[k].elements.len();
                let to: Vec<String> = match &m.elements {
                    None => s.ranges[target].elements.clone(),
                    Some(list) => {
                        let mut to = Vec::new();
                        for e in list {
                            match s.named(&e.key) {
                                Some(Named::Range(r)) => to.extend(s.ranges[r].elements.iter().cloned()),
                                _ => to.push(e.key.clone()),
                            }
                        }
                        to
                    }
                };
                if to.len() != own {
                    return Err(Located::new(
                        m.target.at,
                        format!(
                            "the mapping of '{}' ({own} elements) to '{}' needs as many elements, found {}",
                            d.name,
                            m.target.text,
                            to.len()
                        ),
                    ));
                }
                s.ranges[k].mappings.push((target, to));
            }
        }
        Ok(s)
    }

    /// What `key` names: a range, an element of some range, or nothing.
    pub fn named<'s>(&'s self, key: &'s str) -> Option<Named<'s>> {
        if let Some(&r) = self.by_key.get(key) {
            return Some(Named::Range(r));
        }
        self.element_text.contains_key(key).then_some(Named::Element(key))
    }

    pub fn range_of(&self, sub: &Sub) -> Result<usize, Located> {
        self.by_key
            .get(&sub.key)
            .copied()
            .ok_or_else(|| Located::new(sub.at, format!("'{}' is not a subscript range", sub.text)))
    }

    /// An element as written where it was first defined.
    pub fn element_text<'s>(&'s self, key: &'s str) -> &'s str {
        self.element_text.get(key).map_or(key, String::as_str)
    }

    /// The range a variable's position runs over, given the elements its equations define there and the
    /// ranges they name: the first named range that holds them all, else the smallest range that does.
    pub fn dimension(&self, used: &[String], named: &[usize]) -> Option<usize> {
        let holds = |r: usize| self.ranges[r].holds(used);
        if let Some(&r) = named.iter().find(|&&r| holds(r)) {
            return Some(r);
        }
        (0..self.ranges.len()).filter(|&r| holds(r)).min_by_key(|&r| self.ranges[r].elements.len())
    }

    /// The position (from 1) of element `e` in the widest range holding all of `members` (the first
    /// defined of equally wide ones): how Vensim values a subscript used as a number.
    pub fn position(&self, e: &str, members: &[String]) -> f64 {
        let widest = self.widest(members);
        widest.and_then(|r| r.elements.iter().position(|x| x == e)).map_or(f64::NAN, |p| (p + 1) as f64)
    }

    /// The positions (from 1) of range `r`'s elements as [`Subscripts::position`] gives them, all at once.
    pub fn positions(&self, r: usize) -> HashMap<String, f64> {
        let widest = self.ranges.get(r).and_then(|range| self.widest(&range.elements));
        let elements = widest.map_or(&[][..], |w| &w.elements[..]);
        elements.iter().enumerate().map(|(p, e)| (e.clone(), (p + 1) as f64)).collect()
    }

    /// The widest range holding all of `members` (the first defined of equally wide ones).
    fn widest(&self, members: &[String]) -> Option<&Range> {
        self.ranges.iter().filter(|r| r.holds(members)).fold(None::<&Range>, |best, r| match best {
            Some(b) if b.elements.len() >= r.elements.len() => Some(b),
            _ => Some(r),
        })
    }

    /// The element of range `to` that element `e` of range `from` corresponds to through a mapping or
    /// equivalence between them, in either direction.
    pub fn map_element(&self, from: usize, e: &str, to: usize) -> Option<String> {
        let pos = |r: usize| self.ranges[r].elements.iter().position(|x| x == e);
        // `to` maps onto `from`: the element of `to` whose image is `e`.
        if let Some((_, image)) = self.ranges[to].mappings.iter().find(|(t, _)| *t == from) {
            let i = image.iter().position(|x| x == e)?;
            return self.ranges[to].elements.get(i).cloned();
        }
        // `from` maps onto `to`: the image of `e`.
        if let Some((_, image)) = self.ranges[from].mappings.iter().find(|(t, _)| *t == to) {
            return image.get(pos(from)?).cloned();
        }
        None
    }
}

impl Range {
    /// Whether every one of `members` is an element of the range: linear in both (a range's elements against
    /// each other would be quadratic per call, cubic over a range's cells).
    fn holds(&self, members: &[String]) -> bool {
        if members.len() > self.elements.len() {
            return false;
        }
        let elements: HashSet<&str> = self.elements.iter().map(String::as_str).collect();
        members.iter().all(|m| elements.contains(m.as_str()))
    }
}

/// The range a member names, if it names one.
fn self_range(by_key: &HashMap<String, usize>, m: &Sub) -> Option<usize> {
    by_key.get(&m.key).copied()
}
