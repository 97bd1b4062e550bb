//! The record a conformance test keeps of its corpus, shared by the plugins' conformance tests (included with
//! `#[path]`, as test code of two crates): each model's expected status in a Markdown table (`STATUS.md`) and
//! a summary between two markers in the plugin README. `PARFIT_BLESS=1` rewrites both; otherwise any change in
//! either direction fails, so a regression and an unrecorded improvement are both seen.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The README marker that ends the generated conformance section (each test has its own start marker).
pub const README_END: &str = "<!-- end of conformance -->";

/// One model's outcome.
pub struct Outcome {
    /// Its status word, as the table records it (`pass`, `refused`, …).
    pub word: &'static str,
    /// What to show beside an unexpected status.
    pub reason: String,
    /// A crash is never expected, whatever the record says.
    pub crashed: bool,
    /// A refusal's message, which must start with the model's `file:line:column:`.
    pub refusal: Option<String>,
}

/// Where a corpus keeps its record.
pub struct Record {
    /// The status table (`| model | status | … |` rows).
    pub status_file: PathBuf,
    /// The plugin README holding the generated section.
    pub readme: PathBuf,
    /// The marker starting the README's generated section.
    pub readme_start: &'static str,
}

impl Record {
    /// Bless (`PARFIT_BLESS` set) or check the record against `outcomes`: `table` is the status file's new
    /// text, `section` the README section's, markers included.
    pub fn check(&self, outcomes: &BTreeMap<String, Outcome>, table: &str, section: &str) {
        let name = self.status_file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if std::env::var_os("PARFIT_BLESS").is_some() {
            std::fs::write(&self.status_file, table).unwrap();
            let (_, readme) =
                self.readme_with(section).expect("the README has a conformance section between its markers");
            std::fs::write(&self.readme, readme).unwrap();
        }
        let expected = self.expected();
        let mut differences = Vec::new();
        for (model, outcome) in outcomes {
            let want = expected.get(model).map_or("(not recorded)", String::as_str);
            if want != outcome.word || outcome.crashed {
                differences.push(format!("{model}: expected {want}, got {} {}", outcome.word, outcome.reason));
            }
            if let Some(message) = &outcome.refusal
                && !placed(model, message)
            {
                differences.push(format!("{model}: a refusal without the model's file:line:column: {message}"));
            }
        }
        for model in expected.keys().filter(|m| !outcomes.contains_key(*m)) {
            differences.push(format!("{model}: recorded in {name} but not in the corpus"));
        }
        assert!(
            differences.is_empty(),
            "{} models differ from {name} (PARFIT_BLESS=1 rewrites it):\n{}",
            differences.len(),
            differences.join("\n")
        );
        let (readme, rewritten) =
            self.readme_with(section).expect("the README has a conformance section between its markers");
        assert!(readme == rewritten, "the README's conformance section is out of date (PARFIT_BLESS=1 rewrites it)");
    }

    /// The expected statuses: model → status word.
    pub fn expected(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(&self.status_file).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix("| ")?.splitn(3, " | ");
                let (model, status) = (cells.next()?, cells.next()?);
                (model != "model" && !model.starts_with("---")).then(|| (model.to_string(), status.to_string()))
            })
            .collect()
    }

    /// The README and the README with its conformance section replaced by `section` (`None` when it has no
    /// such section).
    fn readme_with(&self, section: &str) -> Option<(String, String)> {
        let readme = std::fs::read_to_string(&self.readme).ok()?;
        let start = readme.find(self.readme_start)?;
        let end = readme[start..].find(README_END)? + start + README_END.len();
        Some((readme.clone(), format!("{}{section}{}", &readme[..start], &readme[end..])))
    }
}

/// Whether `message` starts with `model:line:column:`.
pub fn placed(model: &str, message: &str) -> bool {
    let Some(rest) = message.strip_prefix(model).and_then(|r| r.strip_prefix(':')) else { return false };
    let mut parts = rest.splitn(3, ':');
    let number = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    number(parts.next()) && number(parts.next()) && parts.next().is_some()
}
