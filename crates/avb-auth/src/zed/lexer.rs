//! Tokens of the schema language, lexed the way SpiceDB's `schemadsl` lexer does it, including its synthetic
//! semicolons: a newline after an identifier, keyword, `}`, `)` or `*` ends a statement, so a schema SpiceDB
//! rejects for a misplaced line break is rejected here too.

use super::{Position, SchemaError, SchemaErrorKind};

/// Words the lexer never reads as identifiers (SpiceDB's server-side list; `any`, `all` and `use` are
/// contextual there and stay identifiers).
const KEYWORDS: [&str; 6] = ["definition", "caveat", "relation", "permission", "nil", "with"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Ident(String),
    Keyword(&'static str),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Pipe,
    Plus,
    Minus,
    Amp,
    Div,
    Equals,
    Colon,
    Semicolon,
    /// A newline that ends a statement.
    SyntheticSemicolon,
    Arrow,
    Hash,
    Ellipsis,
    Star,
    Period,
    Comma,
    /// A character the language does not use; the parser reports it where it stands, so that an
    /// unsupported construct (a caveat's CEL body) is named as such rather than as a stray character.
    Unknown(char),
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("identifier `{name}`"),
            Tok::Keyword(kw) => format!("keyword `{kw}`"),
            Tok::LBrace => "`{`".into(),
            Tok::RBrace => "`}`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Pipe => "`|`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Amp => "`&`".into(),
            Tok::Div => "`/`".into(),
            Tok::Equals => "`=`".into(),
            Tok::Colon => "`:`".into(),
            Tok::Semicolon => "`;`".into(),
            Tok::SyntheticSemicolon => "end of line".into(),
            Tok::Arrow => "`->`".into(),
            Tok::Hash => "`#`".into(),
            Tok::Ellipsis => "`...`".into(),
            Tok::Star => "`*`".into(),
            Tok::Period => "`.`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Unknown(c) => format!("unrecognized character {c:?}"),
            Tok::Eof => "end of input".into(),
        }
    }

    fn ends_statement_on_newline(&self) -> bool {
        matches!(
            self,
            Tok::Ident(_) | Tok::Keyword(_) | Tok::RBrace | Tok::RParen | Tok::Star
        )
    }
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: Position,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn pos(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' || c == '\r' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.bump();
            true
        } else {
            false
        }
    }
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(super) fn lex(text: &str) -> Result<Vec<Token>, SchemaError> {
    let mut cur = Cursor {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut out: Vec<Token> = Vec::new();
    let mut last_significant: Option<Tok> = None;

    loop {
        let pos = cur.pos();
        let Some(c) = cur.bump() else { break };
        let tok = match c {
            ' ' | '\t' => continue,
            '\n' | '\r' => {
                if last_significant
                    .as_ref()
                    .is_some_and(Tok::ends_statement_on_newline)
                {
                    Tok::SyntheticSemicolon
                } else {
                    continue;
                }
            }
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '|' => Tok::Pipe,
            '+' => Tok::Plus,
            '&' => Tok::Amp,
            '=' => Tok::Equals,
            ':' => Tok::Colon,
            ';' => Tok::Semicolon,
            '#' => Tok::Hash,
            '*' => Tok::Star,
            ',' => Tok::Comma,
            '-' => {
                if cur.eat('>') {
                    Tok::Arrow
                } else {
                    Tok::Minus
                }
            }
            '.' => {
                if cur.peek() == Some('.') {
                    cur.bump();
                    if !cur.eat('.') {
                        return Err(SchemaError::new(
                            SchemaErrorKind::Syntax,
                            pos,
                            "unrecognized character sequence `..`",
                        ));
                    }
                    Tok::Ellipsis
                } else {
                    Tok::Period
                }
            }
            '/' => {
                if cur.eat('/') {
                    while let Some(n) = cur.peek() {
                        if n == '\n' || n == '\r' {
                            break;
                        }
                        cur.bump();
                    }
                    continue;
                }
                if cur.eat('*') {
                    let mut closed = false;
                    while let Some(n) = cur.bump() {
                        if n == '*' && cur.eat('/') {
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        return Err(SchemaError::new(
                            SchemaErrorKind::Syntax,
                            pos,
                            "unterminated multiline comment",
                        ));
                    }
                    continue;
                }
                Tok::Div
            }
            c if c == '_' || c.is_alphanumeric() => {
                let mut word = String::from(c);
                while let Some(n) = cur.peek() {
                    if n == '_' || n.is_alphanumeric() {
                        word.push(n);
                        cur.bump();
                    } else {
                        break;
                    }
                }
                match KEYWORDS.iter().find(|kw| **kw == word) {
                    Some(kw) => Tok::Keyword(kw),
                    None => Tok::Ident(word),
                }
            }
            other => Tok::Unknown(other),
        };
        last_significant = Some(tok.clone());
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: cur.pos(),
    });
    Ok(out)
}
