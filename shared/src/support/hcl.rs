//! A guard in front of the HCL parser (hcl-edit, under hcl-rs too): its backtracking is
//! exponential in how deeply brackets nest where an expression may start — found by
//! fuzzing: a 290-byte policy of nested `%{` took 13 s, and every 2 more levels ×16.
//! Real files (a Nomad job: job > group > task > config > a map; a service file) nest
//! under 10, so anything deeper than [`MAX_NESTING`] is refused before it is parsed.

/// The deepest nesting of `{`, `[` and `(` an HCL text may have (including inside strings
/// and heredocs, whose `${...}` are parsed as expressions too).
pub const MAX_NESTING: usize = 12;

/// `Err` with line and column where `text` nests deeper than [`MAX_NESTING`].
pub fn check_nesting(text: &str) -> Result<(), String> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    for c in text.chars() {
        col += 1;
        match c {
            '\n' => (line, col) = (line + 1, 0),
            '{' | '[' | '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "{line}:{col}: brackets nest deeper than {MAX_NESTING} levels (a file this deep is refused unread)"
                    ));
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_with_its_place_and_real_files_pass() {
        let job = "job \"w\" {\n group \"g\" {\n task \"t\" {\n config { labels = { a = [\"${x[0]}\"] } }\n }\n }\n}\n";
        assert!(check_nesting(job).is_ok());
        let e = check_nesting(&"j=api0%lll%{llll%ll%{lll".repeat(12)).unwrap_err();
        assert!(e.starts_with("1:") && e.contains("deeper than 12"), "{e}");
        assert!(check_nesting(&format!("a = {}\n", "(".repeat(13))).unwrap_err().starts_with("1:17"));
    }
}
