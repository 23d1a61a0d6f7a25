//! Parsing: literal text and `${ ... }` holes, each hole by recursive descent.

use super::{Expr, ExprParseError, Op, Part};

/// Splits `source` into literal text and parsed holes; returns them with the columns read.
pub(super) fn parse_template(source: &str) -> Result<(Vec<Part>, Vec<String>), ExprParseError> {
    let mut parser = Parser {
        chars: source.chars().collect(),
        pos: 0,
        columns: Vec::new(),
    };
    let mut parts = Vec::new();
    let mut literal = String::new();
    while parser.pos < parser.chars.len() {
        let opener = if parser.starts_with("${") {
            2
        } else if parser.starts_with("$->{") {
            4
        } else {
            literal.push(parser.chars[parser.pos]);
            parser.pos += 1;
            continue;
        };
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        let start = parser.pos;
        parser.pos += opener;
        let expr = parser.expr()?;
        if parser.peek() != Some('}') {
            return Err(parser.error(format!(
                "expected an operator or `}}` to close the hole opened at character {}",
                start + 1
            )));
        }
        parser.pos += 1;
        parts.push(Part::Hole(expr));
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok((parts, parser.columns))
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    columns: Vec<String>,
}

impl Parser {
    fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn error(&self, message: impl Into<String>) -> ExprParseError {
        ExprParseError {
            position: self.pos + 1,
            message: message.into(),
        }
    }

    /// The next non-blank character, without consuming it.
    fn peek(&mut self) -> Option<char> {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        self.chars.get(self.pos).copied()
    }

    fn expect(&mut self, wanted: char) -> Result<(), ExprParseError> {
        if self.peek() == Some(wanted) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.found();
            Err(self.error(format!("expected `{wanted}`, found {found}")))
        }
    }

    fn found(&mut self) -> String {
        match self.peek() {
            Some(c) => format!("`{c}`"),
            None => "the end of the expression".to_string(),
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprParseError> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, ExprParseError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some('*') => Op::Mul,
                Some('/') => Op::Div,
                Some('%') => Op::Rem,
                _ => return Ok(left),
            };
            let at = self.pos;
            self.pos += 1;
            let right = self.unary()?;
            if matches!(op, Op::Div | Op::Rem) && matches!(right, Expr::Int(0)) {
                self.pos = at;
                return Err(self.error("division by zero"));
            }
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprParseError> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some('+') => {
                self.pos += 1;
                self.unary()
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, ExprParseError> {
        let mut expr = self.primary()?;
        while self.peek() == Some('.') {
            self.pos += 1;
            let at = self.pos;
            let method = self.ident();
            self.expect('(')?;
            self.expect(')')?;
            expr = match method.as_str() {
                "abs" => Expr::Abs(Box::new(expr)),
                "hashCode" => Expr::HashCode(Box::new(expr)),
                _ => {
                    self.pos = at;
                    return Err(self.error(format!(
                        "unknown method `{method}`; known methods: abs(), hashCode()"
                    )));
                }
            };
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, ExprParseError> {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(char::is_ascii_digit) {
                    self.pos += 1;
                }
                let digits: String = self.chars[start..self.pos].iter().collect();
                digits.parse().map(Expr::Int).map_err(|_| {
                    self.pos = start;
                    self.error(format!("number {digits} is too large"))
                })
            }
            Some(quote @ ('\'' | '"')) => {
                let start = self.pos;
                self.pos += 1;
                let mut text = String::new();
                loop {
                    match self.chars.get(self.pos) {
                        Some(&c) if c == quote => break,
                        Some(&c) => text.push(c),
                        None => {
                            self.pos = start;
                            return Err(self.error("string is not closed"));
                        }
                    }
                    self.pos += 1;
                }
                self.pos += 1;
                Ok(Expr::Text(text))
            }
            Some('(') => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect(')')?;
                Ok(inner)
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let name = self.ident();
                if name == "Math" && self.peek() == Some('.') {
                    self.pos += 1;
                    let at = self.pos;
                    if self.ident() != "abs" {
                        self.pos = at;
                        return Err(self.error("only Math.abs(...) is supported"));
                    }
                    return self.call_argument().map(|e| Expr::Abs(Box::new(e)));
                }
                if name == "abs" && self.peek() == Some('(') {
                    return self.call_argument().map(|e| Expr::Abs(Box::new(e)));
                }
                let name = name.to_lowercase();
                let index = match self.columns.iter().position(|c| *c == name) {
                    Some(index) => index,
                    None => {
                        self.columns.push(name);
                        self.columns.len() - 1
                    }
                };
                Ok(Expr::Column(index))
            }
            _ => {
                let found = self.found();
                Err(self.error(format!(
                    "expected a number, a column name, a 'string' or `(`, found {found}"
                )))
            }
        }
    }

    fn call_argument(&mut self) -> Result<Expr, ExprParseError> {
        self.expect('(')?;
        let argument = self.expr()?;
        self.expect(')')?;
        Ok(argument)
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
}
