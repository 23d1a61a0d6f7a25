//! The token-level pre-pass: placeholders in order of appearance, and MySQL's
//! `LOCK IN SHARE MODE`, which sqlparser cannot parse.

use sqlparser::tokenizer::Span;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

/// The statement's parameter placeholders.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placeholders {
    /// Where each MySQL `?` starts, in order of appearance: the n-th is parameter n-1.
    questions: Vec<Location>,
    /// The highest PostgreSQL `$n`.
    max_dollar: usize,
}

impl Placeholders {
    pub(super) fn scan(tokens: &[TokenWithSpan]) -> Self {
        let mut placeholders = Placeholders::default();
        for token in tokens {
            if let Token::Placeholder(text) = &token.token {
                if text == "?" {
                    placeholders.questions.push(token.span.start);
                } else if let Some(n) = dollar_number(text) {
                    placeholders.max_dollar = placeholders.max_dollar.max(n);
                }
            }
        }
        placeholders
    }

    /// How many parameters the client must bind: the number of `?`s, or the highest `$n`.
    pub(crate) fn count(&self) -> usize {
        self.questions.len().max(self.max_dollar)
    }

    /// The 0-based parameter index of placeholder `text` found at `span`; `None` for
    /// placeholders that are not positional (`:name`).
    pub(crate) fn index(&self, text: &str, span: Span) -> Option<usize> {
        if text == "?" {
            return self.questions.iter().position(|at| *at == span.start);
        }
        dollar_number(text).map(|n| n - 1)
    }
}

/// `n` of a PostgreSQL `$n` (n ≥ 1).
fn dollar_number(text: &str) -> Option<usize> {
    text.strip_prefix('$')?.parse().ok().filter(|n| *n >= 1)
}

/// Removes a trailing MySQL `LOCK IN SHARE MODE` (before any `;` and comments) from
/// `tokens`, saying whether it was there.
pub(super) fn strip_lock_in_share_mode(tokens: &mut Vec<TokenWithSpan>) -> bool {
    let significant: Vec<usize> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_) | Token::SemiColon))
        .map(|(i, _)| i)
        .collect();
    let Some(tail) = significant
        .len()
        .checked_sub(4)
        .map(|at| &significant[at..])
    else {
        return false;
    };
    let words = ["LOCK", "IN", "SHARE", "MODE"];
    let matches = tail.iter().zip(words).all(|(&i, word)| {
        matches!(&tokens[i].token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    });
    if matches {
        tokens.truncate(tail[0]);
        tokens.push(TokenWithSpan::wrap(Token::Whitespace(Whitespace::Space)));
    }
    matches
}
