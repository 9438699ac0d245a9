//! A guard in front of the HCL parser (hcl-edit, under hcl-rs too): its backtracking is
//! exponential in how deeply *expressions* nest — objects above all (found by fuzzing: a
//! 290-byte policy of `%{` nested 20 deep took 13 s; a 442-byte job file 12 deep, 470
//! ms; each object level multiplies the time by 2–4). Blocks, and brackets that are only
//! text (in a string, a heredoc, a comment), cost nothing. So the guard reads the text as
//! the parser will — block bodies, attribute expressions, strings with their `${…}` and
//! `%{…}`, heredocs, comments — and refuses, before parsing, a text whose expressions nest
//! deeper than [`MAX_EXPR_NESTING`] or whose blocks nest deeper than [`MAX_BLOCK_NESTING`].
//! Real files stay far below both: a Nomad job's `config { labels = { a = ["${x[0]}"] } }`
//! nests expressions 4 deep; job > group > task > config is 4 blocks.

/// How deeply brackets may nest inside one attribute's expression: objects, lists,
/// parentheses and a string's `${…}` / `%{…}`. At this depth the slowest input fuzzing
/// has found parses in a few milliseconds.
pub const MAX_EXPR_NESTING: usize = 8;

/// How deeply blocks (`job { group { task { … } } }`) may nest.
pub const MAX_BLOCK_NESTING: usize = 16;

#[derive(Debug, Clone, PartialEq)]
enum Frame {
    /// A block's body `{ … }` (the file itself is the outermost body).
    Block,
    /// `(`, `[` or an object's `{` in an expression; the char closes it.
    Expr(char),
    /// A string's or heredoc's `${…}` / `%{…}`: an expression up to its `}`.
    Interp,
    /// A quoted string.
    Str,
    /// A heredoc's text up to the line that is its marker.
    Heredoc(String),
}

/// Where a text nests too deeply, and how. Shown as `line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// `Err` with line and column where `text` nests deeper than the parser can afford.
pub fn check_nesting(text: &str) -> Result<(), TooDeep> {
    let mut stack = vec![Frame::Block];
    let (mut blocks, mut exprs) = (0usize, 0usize);
    // In a block's body: whether this line's statement is an attribute (after its `=`).
    let mut after_eq = false;
    let (mut line, mut col) = (1usize, 0usize);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_start = true;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        col += 1;
        let at_line_start = std::mem::replace(&mut line_start, c == '\n');
        if c == '\n' {
            (line, col) = (line + 1, 0);
        }
        let top = stack.last().cloned().unwrap_or(Frame::Block);
        match top {
            Frame::Str | Frame::Heredoc(_) => {
                if let Frame::Heredoc(marker) = &top
                    && at_line_start
                {
                    let rest: String = chars[i..].iter().take_while(|&&ch| ch != '\n').collect();
                    if rest.trim() == marker {
                        stack.pop();
                        i += rest.chars().count();
                        col += rest.chars().count().saturating_sub(1);
                        continue;
                    }
                }
                match (c, next) {
                    ('\\', _) if top == Frame::Str => {
                        i += 1;
                        col += 1;
                    }
                    ('"', _) if top == Frame::Str => drop(stack.pop()),
                    ('$', Some('$')) | ('%', Some('%')) => {
                        i += 1; // `$${` and `%%{` are text
                        col += 1;
                    }
                    ('$' | '%', Some('{')) => {
                        exprs += 1;
                        if exprs > MAX_EXPR_NESTING {
                            return Err(too_deep(line, col, "expressions", MAX_EXPR_NESTING));
                        }
                        stack.push(Frame::Interp);
                        i += 1;
                        col += 1;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            Frame::Block | Frame::Expr(_) | Frame::Interp => {}
        }
        let in_expr = top != Frame::Block || after_eq;
        match (c, next) {
            ('#', _) | ('/', Some('/')) => {
                // A line comment: skip to its newline (left for the loop to count).
                while i + 1 < chars.len() && chars[i + 1] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        (line, col) = (line + 1, 0);
                    }
                    i += 1;
                }
                i += 1;
            }
            ('"', _) => stack.push(Frame::Str),
            ('<', Some('<')) if in_expr => {
                let mut j = i + 2;
                if chars.get(j) == Some(&'-') {
                    j += 1;
                }
                let marker: String =
                    chars[j..].iter().take_while(|ch| ch.is_alphanumeric() || **ch == '_' || **ch == '-').collect();
                if !marker.is_empty()
                    && chars.get(j + marker.chars().count()).is_some_and(|ch| *ch == '\n' || *ch == '\r')
                {
                    i = j + marker.chars().count();
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    (line, col, line_start) = (line + 1, 0, true);
                    stack.push(Frame::Heredoc(marker));
                }
            }
            ('=', _) if top == Frame::Block => after_eq = true,
            ('\n', _) if top == Frame::Block => after_eq = false,
            ('{' | '(' | '[', _) if in_expr => {
                exprs += 1;
                if exprs > MAX_EXPR_NESTING {
                    return Err(too_deep(line, col, "expressions", MAX_EXPR_NESTING));
                }
                stack.push(Frame::Expr(match c {
                    '{' => '}',
                    '(' => ')',
                    _ => ']',
                }));
            }
            ('{', _) => {
                blocks += 1;
                if blocks > MAX_BLOCK_NESTING {
                    return Err(too_deep(line, col, "blocks", MAX_BLOCK_NESTING));
                }
                stack.push(Frame::Block);
            }
            ('}' | ')' | ']', _) => match top {
                Frame::Expr(_) | Frame::Interp => {
                    stack.pop();
                    exprs -= 1;
                }
                Frame::Block if c == '}' && stack.len() > 1 => {
                    stack.pop();
                    blocks -= 1;
                    after_eq = false;
                }
                _ => {} // unbalanced: the parser says where
            },
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn too_deep(line: usize, column: usize, what: &str, max: usize) -> TooDeep {
    let message = format!("{what} nest deeper than {max} levels (a file this deep is refused unread)");
    TooDeep { line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_expressions_are_refused_with_their_place() {
        let e = check_nesting(&"j=api0%lll%{llll%ll%{lll".repeat(12)).unwrap_err().to_string();
        assert!(e.starts_with("1:") && e.contains("expressions nest deeper than 8"), "{e}");
        assert!(check_nesting(&format!("a = {}\n", "(".repeat(9))).unwrap_err().to_string().starts_with("1:13"));
        assert!(check_nesting(&format!("a = {}\n", "(".repeat(8))).is_ok());
        // Interpolations are expressions, in a string and in a heredoc.
        let interp = format!("a = \"{}\"\n", "${x[".repeat(5));
        assert!(check_nesting(&interp).unwrap_err().to_string().starts_with("1:"), "{interp}");
        let heredoc = format!("a = <<EOT\n{}\nEOT\n", "%{ if ".repeat(9));
        assert!(check_nesting(&heredoc).unwrap_err().to_string().starts_with("2:"), "{heredoc}");
        // Lines are counted through heredocs and block comments.
        let late = format!("/* a\nb */\nx = <<-EOT\n  text\n  EOT\nb {{\n  a = {}\n}}\n", "[".repeat(9));
        assert!(
            check_nesting(&late).unwrap_err().to_string().starts_with("7:"),
            "{}",
            check_nesting(&late).unwrap_err()
        );
    }

    #[test]
    fn blocks_nest_deeper_than_expressions_and_text_is_not_counted() {
        let job = "job \"w\" {\n group \"g\" {\n task \"t\" {\n config { labels = { a = [\"${x[0]}\"] } }\n }\n }\n}\n";
        assert!(check_nesting(job).is_ok());
        let blocks = |n: usize| format!("{}a = 1\n{}", "b {\n".repeat(n), "}\n".repeat(n));
        assert!(check_nesting(&blocks(16)).is_ok());
        assert!(check_nesting(&blocks(17)).unwrap_err().message.contains("blocks nest deeper than 16"));
        // A JSON document in a heredoc, braces in strings and comments: text, not nesting.
        let deep_json = format!("{}{}", "{\"a\":".repeat(20), "}".repeat(20));
        let text = format!(
            "task \"t\" {{\n  # {{{{{{{{{{{{{{{{{{{{\n  data = <<EOH\n{deep_json}\n{{{{ range service \"x\" }}}}\nEOH\n  \
             rule = \"Host(`a`) && ((((((((((Path(`/`))))))))))\"\n  esc = \"\\\"{{{{{{{{{{\"\n  lit = \"$${{{{{{{{{{\"\n}}\n"
        );
        assert!(check_nesting(&text).is_ok(), "{:?}", check_nesting(&text));
        // A block after an attribute's object: still a block.
        assert!(check_nesting("a = { b = 1 }\nc {\n d = [1]\n}\n").is_ok());
    }

    #[test]
    fn the_slowest_known_shapes_are_refused_before_they_get_deep() {
        // Each accepted at the limit, refused one past it.
        for unit in ["j=a%{l%l%{l", "j=api0%lll%{llll%ll%{lll", "j=\"${a%{l%l%{l"] {
            let mut n = 1;
            while check_nesting(&unit.repeat(n)).is_ok() {
                n += 1;
            }
            assert!(n > 2 && n < 12, "{unit}: refused at {n} repeats");
        }
    }
}
