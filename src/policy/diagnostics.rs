//! Policy errors that point at a line and column of the file.

use std::fmt;
use std::ops::Range;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the source the problem refers to.
    pub span: Range<usize>,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for `span`.
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
        }
    }
}

/// Every problem found in one policy file, ready to print with line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors {
    /// Name of the file (as given on the command line).
    pub file: String,
    /// Located problems, in file order.
    pub diagnostics: Vec<LocatedDiagnostic>,
}

/// A diagnostic with its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedDiagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The problem.
    pub message: String,
}

impl PolicyErrors {
    /// Locates `diagnostics` in `source`.
    pub fn new(file: &str, source: &str, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| d.span.start);
        diagnostics.dedup();
        let diagnostics = diagnostics
            .into_iter()
            .map(|d| {
                let (line, column) = line_col(source, d.span.start);
                LocatedDiagnostic {
                    line,
                    column,
                    message: d.message,
                }
            })
            .collect();
        Self {
            file: file.to_string(),
            diagnostics,
        }
    }

    /// A problem with the file as a whole (e.g. it cannot be read).
    pub(crate) fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            diagnostics: vec![LocatedDiagnostic {
                line: 1,
                column: 1,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, d.line, d.column, d.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// 1-based line and column of byte `offset` in `source`.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 100), (3, 1));
    }
}
