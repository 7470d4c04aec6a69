//! Recursive-descent parser for the schema language, with SpiceDB's grammar and operator precedence:
//! `-` binds loosest, then `&`, then `+`, then `->`; all are left-associative. So `a - b + c` is `a - (b + c)`,
//! exactly as SpiceDB reads it.

use super::lexer::{Tok, Token};
use super::{ArrowFunction, Position, SchemaError, SchemaErrorKind};

/// Parenthesis nesting beyond this is rejected, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 64;

#[derive(Debug)]
pub(super) struct AstDefinition {
    pub(super) name: String,
    pub(super) pos: Position,
    pub(super) members: Vec<AstMember>,
}

#[derive(Debug)]
pub(super) enum AstMember {
    Relation {
        name: String,
        pos: Position,
        allowed: Vec<AstAllowed>,
    },
    Permission {
        name: String,
        pos: Position,
        expr: AstExpr,
    },
}

#[derive(Debug)]
pub(super) struct AstAllowed {
    pub(super) object_type: String,
    pub(super) pos: Position,
    pub(super) kind: AstAllowedKind,
}

#[derive(Debug)]
pub(super) enum AstAllowedKind {
    Ellipsis,
    Wildcard,
    Relation(String, Position),
}

#[derive(Debug)]
pub(super) enum AstExpr {
    Nil,
    Ref(String, Position),
    Arrow {
        tupleset: String,
        tupleset_pos: Position,
        computed: String,
        function: ArrowFunction,
    },
    Union(Vec<AstExpr>),
    Intersection(Vec<AstExpr>),
    Exclusion(Box<AstExpr>, Vec<AstExpr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    eof: Token,
    depth: usize,
}

pub(super) fn parse(tokens: Vec<Token>) -> Result<Vec<AstDefinition>, SchemaError> {
    let eof_pos = tokens
        .last()
        .map(|t| t.pos)
        .unwrap_or(Position { line: 1, column: 1 });
    let mut p = Parser {
        tokens,
        at: 0,
        eof: Token {
            tok: Tok::Eof,
            pos: eof_pos,
        },
        depth: 0,
    };
    p.file()
}

impl Parser {
    fn current(&self) -> &Token {
        self.tokens.get(self.at).unwrap_or(&self.eof)
    }

    fn advance(&mut self) -> Token {
        let tok = self.current().clone();
        if self.at < self.tokens.len() {
            self.at += 1;
        }
        tok
    }

    fn is(&self, tok: &Tok) -> bool {
        &self.current().tok == tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.is(tok) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> SchemaError {
        let cur = self.current();
        SchemaError::new(
            SchemaErrorKind::Syntax,
            cur.pos,
            format!("expected {expected}, found {}", cur.tok.describe()),
        )
    }

    fn expect(&mut self, tok: &Tok) -> Result<Token, SchemaError> {
        if self.is(tok) {
            Ok(self.advance())
        } else {
            Err(self.unexpected(&tok.describe()))
        }
    }

    fn identifier(&mut self) -> Result<(String, Position), SchemaError> {
        let cur = self.current().clone();
        match cur.tok {
            Tok::Ident(name) => {
                self.advance();
                Ok((name, cur.pos))
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    /// A statement ends with `;` or a line break (SpiceDB also accepts end of input, which then fails on the
    /// missing `}`).
    fn terminator(&mut self) -> Result<(), SchemaError> {
        match self.current().tok {
            Tok::Semicolon | Tok::SyntheticSemicolon => {
                self.advance();
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => Err(self.unexpected("end of statement (newline or `;`)")),
        }
    }

    fn file(&mut self) -> Result<Vec<AstDefinition>, SchemaError> {
        let mut defs = Vec::new();
        loop {
            while matches!(self.current().tok, Tok::Semicolon | Tok::SyntheticSemicolon) {
                self.advance();
            }
            match self.current().tok.clone() {
                Tok::Eof => return Ok(defs),
                Tok::Keyword("definition") => defs.push(self.definition()?),
                Tok::Keyword("caveat") => {
                    return Err(SchemaError::new(
                        SchemaErrorKind::Unsupported,
                        self.current().pos,
                        "caveats are not supported by this schema engine",
                    ));
                }
                Tok::Ident(word) if word == "use" => {
                    return Err(SchemaError::new(
                        SchemaErrorKind::Unsupported,
                        self.current().pos,
                        "`use` flags (expiration, self, typechecking) are not supported by this schema engine",
                    ));
                }
                _ => return Err(self.unexpected("`definition`")),
            }
        }
    }

    fn type_path(&mut self) -> Result<(String, Position), SchemaError> {
        let (mut name, pos) = self.identifier()?;
        while self.eat(&Tok::Div) {
            let (segment, _) = self.identifier()?;
            name.push('/');
            name.push_str(&segment);
        }
        Ok((name, pos))
    }

    fn definition(&mut self) -> Result<AstDefinition, SchemaError> {
        self.advance();
        let (name, pos) = self.type_path()?;
        self.expect(&Tok::LBrace)?;
        let mut members = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                break;
            }
            match self.current().tok {
                Tok::Keyword("relation") => {
                    members.push(self.relation()?);
                    self.terminator()?;
                }
                Tok::Keyword("permission") => {
                    members.push(self.permission()?);
                    self.terminator()?;
                }
                Tok::Semicolon | Tok::SyntheticSemicolon => {
                    self.advance();
                }
                _ => return Err(self.unexpected("`relation`, `permission` or `}`")),
            }
        }
        Ok(AstDefinition { name, pos, members })
    }

    fn relation(&mut self) -> Result<AstMember, SchemaError> {
        self.advance();
        let (name, pos) = self.identifier()?;
        self.expect(&Tok::Colon)?;
        let mut allowed = vec![self.allowed_type()?];
        while self.eat(&Tok::Pipe) {
            allowed.push(self.allowed_type()?);
        }
        Ok(AstMember::Relation { name, pos, allowed })
    }

    fn allowed_type(&mut self) -> Result<AstAllowed, SchemaError> {
        let (object_type, pos) = self.type_path()?;
        let kind = if self.eat(&Tok::Colon) {
            self.expect(&Tok::Star)?;
            AstAllowedKind::Wildcard
        } else if self.eat(&Tok::Hash) {
            let cur = self.current().clone();
            match cur.tok {
                Tok::Ellipsis => {
                    self.advance();
                    AstAllowedKind::Ellipsis
                }
                Tok::Ident(rel) => {
                    self.advance();
                    AstAllowedKind::Relation(rel, cur.pos)
                }
                _ => return Err(self.unexpected("a relation name or `...`")),
            }
        } else {
            AstAllowedKind::Ellipsis
        };
        if self.is(&Tok::Keyword("with")) {
            return Err(SchemaError::new(
                SchemaErrorKind::Unsupported,
                self.current().pos,
                "caveats and expiration (`with`) are not supported by this schema engine",
            ));
        }
        Ok(AstAllowed {
            object_type,
            pos,
            kind,
        })
    }

    fn permission(&mut self) -> Result<AstMember, SchemaError> {
        self.advance();
        let (name, pos) = self.identifier()?;
        self.expect(&Tok::Equals)?;
        let expr = self.exclusion()?;
        Ok(AstMember::Permission { name, pos, expr })
    }

    fn exclusion(&mut self) -> Result<AstExpr, SchemaError> {
        let base = self.intersection()?;
        let mut excluded = Vec::new();
        while self.eat(&Tok::Minus) {
            excluded.push(self.intersection()?);
        }
        if excluded.is_empty() {
            Ok(base)
        } else {
            Ok(AstExpr::Exclusion(Box::new(base), excluded))
        }
    }

    fn intersection(&mut self) -> Result<AstExpr, SchemaError> {
        let first = self.union()?;
        if !self.is(&Tok::Amp) {
            return Ok(first);
        }
        let mut children = vec![first];
        while self.eat(&Tok::Amp) {
            children.push(self.union()?);
        }
        Ok(AstExpr::Intersection(children))
    }

    fn union(&mut self) -> Result<AstExpr, SchemaError> {
        let first = self.arrow()?;
        if !self.is(&Tok::Plus) {
            return Ok(first);
        }
        let mut children = vec![first];
        while self.eat(&Tok::Plus) {
            children.push(self.arrow()?);
        }
        Ok(AstExpr::Union(children))
    }

    fn arrow(&mut self) -> Result<AstExpr, SchemaError> {
        let cur = self.current().clone();
        let Tok::Ident(tupleset) = cur.tok else {
            return self.base();
        };
        self.advance();
        let function = if self.eat(&Tok::Arrow) {
            ArrowFunction::Any
        } else if self.is(&Tok::Period) {
            self.advance();
            let (name, name_pos) = self.identifier()?;
            let function = match name.as_str() {
                "any" => ArrowFunction::Any,
                "all" => ArrowFunction::All,
                _ => {
                    return Err(SchemaError::new(
                        SchemaErrorKind::Syntax,
                        name_pos,
                        format!("expected `any` or `all` for arrow function, found `{name}`"),
                    ));
                }
            };
            self.expect(&Tok::LParen)?;
            let (computed, _) = self.identifier()?;
            self.expect(&Tok::RParen)?;
            return self.finish_arrow(tupleset, cur.pos, computed, function);
        } else {
            return Ok(AstExpr::Ref(tupleset, cur.pos));
        };
        let (computed, _) = self.identifier()?;
        self.finish_arrow(tupleset, cur.pos, computed, function)
    }

    fn finish_arrow(
        &mut self,
        tupleset: String,
        tupleset_pos: Position,
        computed: String,
        function: ArrowFunction,
    ) -> Result<AstExpr, SchemaError> {
        if self.is(&Tok::Arrow) || self.is(&Tok::Period) {
            return Err(SchemaError::new(
                SchemaErrorKind::NestedArrow,
                self.current().pos,
                "nested arrows are not supported",
            ));
        }
        Ok(AstExpr::Arrow {
            tupleset,
            tupleset_pos,
            computed,
            function,
        })
    }

    fn base(&mut self) -> Result<AstExpr, SchemaError> {
        match self.current().tok {
            Tok::LParen => {
                let open = self.advance();
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(SchemaError::new(
                        SchemaErrorKind::Syntax,
                        open.pos,
                        format!("expression nested more than {MAX_NESTING} levels deep"),
                    ));
                }
                let inner = self.exclusion()?;
                self.depth -= 1;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::Keyword("nil") => {
                self.advance();
                Ok(AstExpr::Nil)
            }
            _ => Err(self.unexpected("a relation, permission, `nil` or `(`")),
        }
    }
}
