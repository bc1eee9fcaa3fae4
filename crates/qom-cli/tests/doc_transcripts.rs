//! The `console` transcripts of the user-facing docs are what the binary
//! prints today: every `$ qom ...` line in them is run and its output
//! compared with the lines below it.
//!
//! - A block is skipped only when the line before its opening fence is
//!   `<!-- transcript not checked: REASON -->` (it needs a terminal, a
//!   device or a file system the test machine lacks).
//! - A line `...` (indented or not) in the expected output stands for any
//!   number of lines.
//! - `$ echo $?` checks the exit status of the command before it.
//! - Expected output is standard error followed by standard output, as a
//!   terminal shows them for `qom` (warnings and errors come before the
//!   printed objects).
//! - A QMP session: lines `-> JSON` below a `$ qom ... -qmp stdio` line are
//!   what the client sends (all of it, on standard input); the other lines
//!   are what `qom` prints on standard output, with event timestamps
//!   written `{...}`. Parent directories of the `mem-path`s the session
//!   names are created for the run and removed after it.
//!
//! `QOM_BLESS=1 cargo test -p qom-cli --test doc_transcripts` rewrites the
//! transcripts from the binary, keeping each `...` with as many lines
//! around it as before.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The documents whose transcripts are checked.
const DOCS: [&str; 2] = ["docs/user-guide.md", "README.md"];

const SKIP_MARK: &str = "<!-- transcript not checked:";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One `$ command` line of a transcript and the output shown below it.
struct Step {
    /// Index of the command line in the document.
    line: usize,
    command: String,
    /// Index range of the expected output lines in the document (QMP
    /// input lines `-> ...` included).
    output: std::ops::Range<usize>,
    /// The `-> ` lines of the output range: a QMP client's input.
    inputs: Vec<String>,
}

/// The checked `console` blocks of `text`, as their steps.
fn transcripts(path: &Path, lines: &[&str]) -> Vec<Vec<Step>> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```console" {
            i += 1;
            continue;
        }
        let skipped = i > 0 && lines[i - 1].starts_with(SKIP_MARK);
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or_else(|| panic!("{}:{}: unterminated block", path.display(), i + 1));
        i = end + 1;
        if skipped {
            continue;
        }
        let mut steps: Vec<Step> = Vec::new();
        for (j, line) in lines.iter().enumerate().take(end).skip(start) {
            if let Some(command) = line.strip_prefix("$ ") {
                steps.push(Step {
                    line: j,
                    command: command.to_owned(),
                    output: j + 1..j + 1,
                    inputs: Vec::new(),
                });
            } else if let Some(step) = steps.last_mut() {
                step.output.end = j + 1;
                if let Some(input) = line.strip_prefix("-> ") {
                    step.inputs.push(input.to_owned());
                }
            } else {
                panic!(
                    "{}:{}: output before the first `$ ` command",
                    path.display(),
                    j + 1
                );
            }
        }
        blocks.push(steps);
    }
    blocks
}

/// Splits a command line as a POSIX shell does for plain words, single and
/// double quotes; leading `NAME=value` words become the environment.
fn split(command: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let mut env = Vec::new();
    while let Some((name, value)) = words.first().and_then(|w| w.split_once('=')) {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            break;
        }
        env.push((name.to_owned(), value.to_owned()));
        words.remove(0);
    }
    (env, words)
}

/// A timestamp of an event, in the form the docs write it.
const TIMESTAMP: &str = r#""timestamp": {...}"#;

/// `line` with every event timestamp's value replaced by `{...}`.
fn without_timestamps(line: &str) -> String {
    let key = r#""timestamp": {"#;
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(key) {
        out.push_str(&rest[..at]);
        let after = &rest[at + key.len()..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        out.push_str(TIMESTAMP);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Directories a QMP session needs for its `mem-path`s: the missing
/// parents, created now; the caller removes them afterwards.
fn prepare_mem_paths(inputs: &[&str]) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for input in inputs {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(input) else {
            continue;
        };
        let path = v["arguments"]["mem-path"].as_str().map(PathBuf::from);
        if let Some(parent) = path.as_deref().and_then(Path::parent) {
            if !parent.exists() && parent.starts_with("/tmp") {
                std::fs::create_dir_all(parent).expect("create a mem-path directory");
                made.push(parent.to_path_buf());
            }
        }
    }
    made
}

/// What running one step printed, and its exit status.
fn run(step: &Step, last_status: Option<i32>, doc: &str) -> (Vec<String>, Option<i32>) {
    let where_ = format!("{doc}:{}", step.line + 1);
    if step.command == "echo $?" {
        let status =
            last_status.unwrap_or_else(|| panic!("{where_}: `echo $?` needs a command before it"));
        return (vec![status.to_string()], Some(0));
    }
    let (env, words) = split(&step.command);
    assert!(
        words.first().map(String::as_str) == Some("qom"),
        "{where_}: only `qom` commands and `echo $?` can be checked; mark the block with \
         `{SKIP_MARK} REASON -->` if it cannot run here: {}",
        step.command
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_qom"));
    command
        .args(&words[1..])
        .envs(env)
        .env_remove("QOM_PLUGIN_PATH")
        .current_dir(repo());
    let inputs: Vec<&str> = step.inputs.iter().map(String::as_str).collect();
    if inputs.is_empty() {
        let out = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{where_}: running qom: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        return (text.lines().map(str::to_owned).collect(), out.status.code());
    }
    let made = prepare_mem_paths(&inputs);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{where_}: running qom: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    for input in &inputs {
        use std::io::Write;
        writeln!(stdin, "{input}").expect("write the session's input");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("qom ends");
    for dir in made {
        let _ = std::fs::remove_dir_all(dir);
    }
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(without_timestamps)
        .collect();
    (lines, out.status.code())
}

/// Whether `actual` matches `expected`, where a `...` line stands for any
/// number of lines.
fn matches(expected: &[&str], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((dots, rest)) if dots.trim() == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|a| a == first) && matches(rest, &actual[1..])
        }
    }
}

/// The new output to write for a step: `actual`, elided around each `...`
/// of `expected` as much as before.
fn blessed(expected: &[&str], actual: &[String]) -> Vec<String> {
    let Some(dots) = expected.iter().position(|l| l.trim() == "...") else {
        return actual.to_vec();
    };
    let head = dots;
    let tail = expected.len() - dots - 1;
    if head + tail >= actual.len() {
        return actual.to_vec();
    }
    let mut out: Vec<String> = actual[..head].to_vec();
    out.push(expected[dots].to_owned());
    out.extend_from_slice(&actual[actual.len() - tail..]);
    out
}

/// `new` output with the `-> ` input lines of `shown` kept where they
/// were (by their position among the output lines; extra output goes
/// last).
fn with_inputs(shown: &[&str], new: Vec<String>) -> Vec<String> {
    let mut new = new.into_iter();
    let mut out = Vec::new();
    for line in shown {
        if line.starts_with("-> ") {
            out.push((*line).to_owned());
        } else if let Some(n) = new.next() {
            out.push(n);
        }
    }
    out.extend(new);
    out
}

#[test]
fn console_transcripts_match_the_binary() {
    let bless = std::env::var_os("QOM_BLESS").is_some();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let path = repo().join(doc);
        let text = std::fs::read_to_string(&path).expect("read the doc");
        let lines: Vec<&str> = text.lines().collect();
        let mut replacements: Vec<(std::ops::Range<usize>, Vec<String>)> = Vec::new();
        for steps in transcripts(&path, &lines) {
            let mut last_status = None;
            for step in &steps {
                let (actual, status) = run(step, last_status, doc);
                last_status = status;
                checked += 1;
                let shown = &lines[step.output.clone()];
                let expected: Vec<&str> = shown
                    .iter()
                    .filter(|l| !l.starts_with("-> "))
                    .copied()
                    .collect();
                if !matches(&expected, &actual) {
                    if bless {
                        let new = blessed(&expected, &actual);
                        replacements.push((step.output.clone(), with_inputs(shown, new)));
                    } else {
                        failures.push(format!(
                            "{doc}:{}: $ {}\n--- the doc shows\n{}\n--- qom prints\n{}",
                            step.line + 1,
                            step.command,
                            shown.join("\n"),
                            actual.join("\n")
                        ));
                    }
                }
            }
        }
        if !replacements.is_empty() {
            let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            for (range, new) in replacements.into_iter().rev() {
                out.splice(range, new);
            }
            let mut joined = out.join("\n");
            if text.ends_with('\n') {
                joined.push('\n');
            }
            std::fs::write(&path, joined).expect("write the doc");
            eprintln!("rewrote {doc}");
        }
    }
    assert!(checked >= 6, "only {checked} transcript steps found");
    assert!(
        failures.is_empty(),
        "{} transcript step(s) differ (QOM_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn elision_and_splitting() {
    let actual: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    assert!(matches(&["a", "...", "d"], &actual));
    assert!(matches(&["...", "c", "d"], &actual));
    assert!(matches(&["a", "b", "c", "d", "..."], &actual));
    assert!(!matches(&["a", "...", "c"], &actual));
    assert!(!matches(&["a", "b"], &actual));
    assert_eq!(blessed(&["a", "...", "z"], &actual), ["a", "...", "d"]);
    let (env, words) = split(r#"X_Y=1 qom -object '{"a": 1}' a\ b "c d""#);
    assert_eq!(env, [("X_Y".to_owned(), "1".to_owned())]);
    assert_eq!(words, ["qom", "-object", r#"{"a": 1}"#, "a b", "c d"]);
    assert_eq!(
        without_timestamps(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "X"}"#),
        r#"{"timestamp": {...}, "event": "X"}"#
    );
    assert_eq!(
        with_inputs(
            &["-> a", "x", "-> b", "y"],
            vec!["1".into(), "2".into(), "3".into()]
        ),
        ["-> a", "1", "-> b", "2", "3"]
    );
}
