//! Parsing: SQL script text to sqlparser statements, with the Flink SQL extensions
//! sqlparser does not know rewritten at the token level (token locations are kept, so
//! every error still points into the original text).
//!
//! Handled here:
//! - statement splitting on `;`;
//! - `SET 'key' = 'value'` and `RESET ['key']` (ignored);
//! - `EXPLAIN [LOGICAL | OPTIMIZED | PHYSICAL] stmt`;
//! - in `CREATE TABLE`: `WATERMARK FOR col AS col [- INTERVAL …]`, `WITH ('k' = 'v', …)`,
//!   `PRIMARY KEY (…) NOT ENFORCED` and metadata columns `col TYPE METADATA [FROM 'key']
//!   [VIRTUAL]` (recorded as the option `'metadata.<col>' = '<key>'`, the key defaulting
//!   to the column name; the connector's validation decides whether it supports them);
//! - window table functions: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), …))` and the form
//!   without the outer `TABLE(…)` become `TUMBLE(t, DESCRIPTOR(ts), …)`;
//!   `SESSION(TABLE t PARTITION BY k, …)` becomes `SESSION(t, PARTITION_BY(k), …)`.

use crate::error::{CompileError, Position};
use crate::limits::{MAX_STATEMENT_TOKENS, PARSER_RECURSION_LIMIT};
use sqlparser::ast::{DateTimeField, Expr, Statement, Value};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer};
use std::collections::BTreeMap;

/// Which plan stage an `EXPLAIN` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExplainStage {
    /// The bound logical plan (`EXPLAIN LOGICAL`).
    Logical,
    /// The optimized logical plan (`EXPLAIN OPTIMIZED`).
    Optimized,
    /// The physical dataflow plan (`EXPLAIN PHYSICAL`).
    Physical,
    /// All three, with headers (bare `EXPLAIN`).
    All,
}

/// A `WATERMARK FOR col AS …` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatermarkDecl {
    /// The event-time column name as written.
    pub column: String,
    /// Delay in milliseconds.
    pub delay_ms: i64,
    /// Where the declaration starts.
    pub position: Option<Position>,
}

/// A `col TYPE METADATA [FROM 'key'] [VIRTUAL]` column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataColumn {
    /// The column name as written.
    pub column: String,
    /// The connector's metadata key (`FROM 'key'`, else the column name).
    pub key: String,
    /// Declared `VIRTUAL` (Flink: read-only). Accepted; not recorded in the options.
    pub is_virtual: bool,
    /// Where `METADATA` is written.
    pub position: Option<Position>,
}

/// The option key that records a metadata column: `metadata.<column>`.
pub fn metadata_option(column: &str) -> String {
    format!("metadata.{column}")
}

/// One statement of a script.
#[derive(Clone, Debug)]
pub enum ParsedStatement {
    /// `CREATE TABLE`, with the Flink parts extracted.
    CreateTable {
        /// The statement without `WATERMARK` and `WITH`.
        stmt: Box<Statement>,
        /// The `WITH` options, in key order.
        options: BTreeMap<String, String>,
        /// Where each `WITH` option's key is written (errors about an option point at it).
        option_positions: BTreeMap<String, Position>,
        /// The watermark declaration.
        watermark: Option<WatermarkDecl>,
        /// The `METADATA` columns (also recorded in `options` as `metadata.<column>`).
        metadata: Vec<MetadataColumn>,
        /// The `col AS PROCTIME()` computed column, if any (removed from `stmt`).
        proctime: Option<ProctimeColumn>,
        /// Where the statement starts.
        position: Option<Position>,
    },
    /// `EXPLAIN [stage] stmt`.
    Explain {
        /// The stage shown.
        stage: ExplainStage,
        /// The explained statement.
        stmt: Box<Statement>,
        /// Where the statement starts.
        position: Option<Position>,
    },
    /// `SET …`, `RESET …` and statement-set markers. `SET 'key' = 'value'` is kept
    /// as a job setting (e.g. `execution.checkpointing.interval`); the rest is ignored.
    Set {
        /// `(key, value)` of a `SET 'key' = 'value'`.
        setting: Option<(String, String)>,
    },
    /// Any other statement, for the binder to judge.
    Other {
        /// The statement.
        stmt: Box<Statement>,
        /// Where the statement starts.
        position: Option<Position>,
    },
}

/// The position of a sqlparser location (`None` for the empty location).
pub fn position_of(loc: Location) -> Option<Position> {
    if loc.line == 0 {
        None
    } else {
        Some(Position {
            line: loc.line,
            column: loc.column,
        })
    }
}

/// The start position of a span.
pub fn span_pos(span: Span) -> Option<Position> {
    position_of(span.start)
}

/// Parses a "... at Line: X, Column: Y" suffix out of a sqlparser message.
fn position_in_message(msg: &str) -> (String, Option<Position>) {
    if let Some(idx) = msg.rfind(" at Line: ") {
        let rest = &msg[idx + " at Line: ".len()..];
        let mut parts = rest.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse::<u64>().ok());
        let column = parts.next().and_then(|c| {
            let digits: String = c.chars().take_while(|ch| ch.is_ascii_digit()).collect();
            digits.parse::<u64>().ok()
        });
        if let (Some(line), Some(column)) = (line, column) {
            return (msg[..idx].to_string(), Some(Position { line, column }));
        }
    }
    (msg.to_string(), None)
}

/// A sqlparser error as a [`CompileError`]. `at` is where the parser stood when it
/// failed (the position of a recursion-limit error, whose message has none).
fn parser_error(e: ParserError, at: Option<Position>, fallback: Option<Position>) -> CompileError {
    match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => {
            let (msg, pos) = position_in_message(&m);
            CompileError::syntax(msg, pos.or(fallback))
        }
        ParserError::RecursionLimitExceeded => CompileError::syntax(
            format!(
                "parentheses, subqueries, CASE expressions or function calls are nested too \
                 deeply (more than {PARSER_RECURSION_LIMIT} levels)"
            ),
            at.or(fallback),
        ),
    }
}

/// A sqlparser parser over `toks`, with Sluice's recursion limit.
fn parser_for<'a>(dialect: &'a GenericDialect, toks: Vec<TokenWithSpan>) -> Parser<'a> {
    Parser::new(dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(toks)
}

/// A `col AS PROCTIME()` computed column: the table's processing-time attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProctimeColumn {
    /// The column name as written.
    pub column: String,
    /// Its place among the declared columns (0-based).
    pub index: usize,
    /// Where the column is written.
    pub position: Option<Position>,
}

/// Where a parser stands (after an error: about where it failed).
fn parser_pos(parser: &Parser<'_>) -> Option<Position> {
    span_pos(parser.peek_token_ref().span)
}

fn is_word(t: Option<&TokenWithSpan>, word: &str) -> bool {
    matches!(t, Some(TokenWithSpan { token: Token::Word(w), .. })
        if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn is_tok(t: Option<&TokenWithSpan>, tok: &Token) -> bool {
    t.map(|t| &t.token == tok).unwrap_or(false)
}

/// In a CREATE TABLE column list, a column named `key` or `index` (Flink accepts both
/// unquoted: Nexmark q13's side input has a `key` column) would be read by sqlparser as
/// a MySQL `KEY`/`INDEX` constraint, which Sluice does not have: such a word at the start
/// of a column definition becomes a quoted identifier with the same spelling.
fn quote_keyword_column_names(toks: &mut [TokenWithSpan]) {
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return;
    };
    let mut depth = 0usize;
    let mut at_column_start = false;
    for t in toks.iter_mut().skip(open) {
        match &mut t.token {
            Token::LParen => {
                depth += 1;
                at_column_start = depth == 1;
                continue;
            }
            Token::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            Token::Comma if depth == 1 => {
                at_column_start = true;
                continue;
            }
            Token::Word(w)
                if at_column_start
                    && w.quote_style.is_none()
                    && (w.value.eq_ignore_ascii_case("key")
                        || w.value.eq_ignore_ascii_case("index")) =>
            {
                w.quote_style = Some('`');
                w.keyword = sqlparser::keywords::Keyword::NoKeyword;
            }
            _ => {}
        }
        at_column_start = false;
    }
}

/// Index of the `)` matching the `(` at `open`, if any.
fn matching_paren(toks: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn tok_pos(toks: &[TokenWithSpan], i: usize) -> Option<Position> {
    toks.get(i).and_then(|t| span_pos(t.span))
}

/// Parse a whole script into statements.
pub fn parse_script(sql: &str) -> Result<Vec<ParsedStatement>, CompileError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| CompileError::syntax(e.message, position_of(e.location)))?;
    let mut stmts = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    for t in tokens {
        match t.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => {
                if !current.is_empty() {
                    stmts.push(parse_statement(std::mem::take(&mut current))?);
                }
            }
            Token::EOF => {}
            _ => {
                if current.len() >= MAX_STATEMENT_TOKENS {
                    return Err(CompileError::unsupported(
                        format!(
                            "the statement has more than {MAX_STATEMENT_TOKENS} tokens (split \
                             it, or move data into a table)"
                        ),
                        tok_pos(&current, 0),
                    ));
                }
                current.push(t)
            }
        }
    }
    if !current.is_empty() {
        stmts.push(parse_statement(current)?);
    }
    Ok(stmts)
}

fn parse_statement(mut toks: Vec<TokenWithSpan>) -> Result<ParsedStatement, CompileError> {
    // Flink statement sets: `EXECUTE STATEMENT SET BEGIN stmt; …; END;` and the older
    // `BEGIN STATEMENT SET; stmt; …; END;` group INSERTs, which a script runs as one job
    // anyway: the markers are dropped.
    if is_word(toks.first(), "EXECUTE")
        && is_word(toks.get(1), "STATEMENT")
        && is_word(toks.get(2), "SET")
        && is_word(toks.get(3), "BEGIN")
    {
        toks.drain(0..4);
    }
    let position = tok_pos(&toks, 0);
    let is_marker = (toks.len() == 1 && is_word(toks.first(), "END"))
        || (toks.len() == 3
            && is_word(toks.first(), "BEGIN")
            && is_word(toks.get(1), "STATEMENT")
            && is_word(toks.get(2), "SET"));
    if toks.is_empty()
        || is_marker
        || is_word(toks.first(), "SET")
        || is_word(toks.first(), "RESET")
    {
        let quoted = |t: Option<&TokenWithSpan>| match t.map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => Some(s.clone()),
            _ => None,
        };
        let setting =
            if is_word(toks.first(), "SET") && toks.len() == 4 && is_tok(toks.get(2), &Token::Eq) {
                quoted(toks.get(1)).zip(quoted(toks.get(3)))
            } else {
                None
            };
        return Ok(ParsedStatement::Set { setting });
    }
    let mut explain = None;
    if is_word(toks.first(), "EXPLAIN") {
        toks.remove(0);
        let mut stage = ExplainStage::All;
        for (w, s) in [
            ("LOGICAL", ExplainStage::Logical),
            ("OPTIMIZED", ExplainStage::Optimized),
            ("PHYSICAL", ExplainStage::Physical),
        ] {
            if is_word(toks.first(), w) {
                toks.remove(0);
                stage = s;
                break;
            }
        }
        if is_word(toks.first(), "PLAN") && is_word(toks.get(1), "FOR") {
            toks.drain(0..2);
        }
        if toks.is_empty() {
            return Err(CompileError::syntax(
                "EXPLAIN needs a statement to explain",
                position,
            ));
        }
        explain = Some(stage);
    }
    rewrite_window_tvfs(&mut toks);
    let is_create_table = is_word(toks.first(), "CREATE")
        && (is_word(toks.get(1), "TABLE")
            || (is_word(toks.get(1), "TEMPORARY") && is_word(toks.get(2), "TABLE")));
    let mut options = BTreeMap::new();
    let mut option_positions = BTreeMap::new();
    let mut watermark = None;
    let mut metadata = Vec::new();
    let mut proctime = None;
    if is_create_table && explain.is_none() {
        quote_keyword_column_names(&mut toks);
        watermark = extract_watermark(&mut toks)?;
        proctime = extract_proctime_column(&mut toks)?;
        metadata = extract_metadata_columns(&mut toks)?;
        let partitioned = extract_partitioned_by(&mut toks)?;
        (options, option_positions) = extract_with_options(&mut toks)?;
        if let Some((columns, at)) = partitioned {
            if options.contains_key(PARTITION_COLUMNS_OPTION) {
                return Err(CompileError::plan(
                    format!("PARTITIONED BY and a '{PARTITION_COLUMNS_OPTION}' option exclude each other"),
                    at,
                ));
            }
            options.insert(PARTITION_COLUMNS_OPTION.to_string(), columns.join(","));
        }
        for m in &metadata {
            let key = metadata_option(&m.column);
            if options.keys().any(|k| k.eq_ignore_ascii_case(&key)) {
                return Err(CompileError::plan(
                    format!(
                        "column '{}' is declared METADATA and also has a '{key}' option",
                        m.column
                    ),
                    m.position,
                ));
            }
            options.insert(key, m.key.clone());
        }
        remove_not_enforced(&mut toks);
    }
    let stmt = Box::new(run_parser(toks, position)?);
    Ok(match explain {
        Some(stage) => ParsedStatement::Explain {
            stage,
            stmt,
            position,
        },
        None if is_create_table => ParsedStatement::CreateTable {
            stmt,
            options,
            option_positions,
            watermark,
            metadata,
            proctime,
            position,
        },
        None => ParsedStatement::Other { stmt, position },
    })
}

fn eof_after(toks: &[TokenWithSpan]) -> TokenWithSpan {
    let span = toks.last().map(|t| t.span).unwrap_or(Span::empty());
    TokenWithSpan {
        token: Token::EOF,
        span: Span::new(span.end, span.end),
    }
}

fn run_parser(
    mut toks: Vec<TokenWithSpan>,
    position: Option<Position>,
) -> Result<Statement, CompileError> {
    let eof = eof_after(&toks);
    toks.push(eof);
    let dialect = GenericDialect {};
    let mut parser = parser_for(&dialect, toks);
    let stmt = parser
        .parse_statement()
        .map_err(|e| parser_error(e, parser_pos(&parser), position))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(CompileError::syntax(
            format!("expected end of statement, found: {}", next.token),
            span_pos(next.span).or(position),
        ));
    }
    Ok(stmt)
}

/// Parse a standalone expression from tokens.
fn parse_expr_tokens(
    mut toks: Vec<TokenWithSpan>,
    position: Option<Position>,
) -> Result<Expr, CompileError> {
    let eof = eof_after(&toks);
    toks.push(eof);
    let dialect = GenericDialect {};
    let mut parser = parser_for(&dialect, toks);
    let e = parser
        .parse_expr()
        .map_err(|e| parser_error(e, parser_pos(&parser), position))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(CompileError::syntax(
            format!("unexpected {} in WATERMARK", next.token),
            span_pos(next.span).or(position),
        ));
    }
    Ok(e)
}

const WINDOW_TVFS: [&str; 4] = ["TUMBLE", "HOP", "SESSION", "CUMULATE"];

fn is_window_tvf_word(t: Option<&TokenWithSpan>) -> bool {
    WINDOW_TVFS.iter().any(|w| is_word(t, w))
}

fn rewrite_window_tvfs(toks: &mut Vec<TokenWithSpan>) {
    // `TABLE(TUMBLE(...))` → `TUMBLE(...)`.
    let mut i = 0;
    while i < toks.len() {
        if is_word(toks.get(i), "TABLE")
            && is_tok(toks.get(i + 1), &Token::LParen)
            && is_window_tvf_word(toks.get(i + 2))
            && is_tok(toks.get(i + 3), &Token::LParen)
        {
            if let Some(close) = matching_paren(toks, i + 1) {
                toks.remove(close);
                toks.drain(i..i + 2);
                continue;
            }
        }
        i += 1;
    }
    // `TUMBLE(TABLE t …` → `TUMBLE(t …`, and SESSION's PARTITION BY.
    let mut i = 0;
    while i < toks.len() {
        if is_window_tvf_word(toks.get(i))
            && is_tok(toks.get(i + 1), &Token::LParen)
            && is_word(toks.get(i + 2), "TABLE")
        {
            toks.remove(i + 2);
            // skip the (possibly qualified) table name
            let mut j = i + 3;
            while is_tok(toks.get(j), &Token::Period) {
                j += 2;
            }
            if is_word(toks.get(j), "PARTITION") && is_word(toks.get(j + 1), "BY") {
                let span = toks.get(j).map(|t| t.span).unwrap_or(Span::empty());
                let mk = |token: Token| TokenWithSpan { token, span };
                toks.splice(
                    j..j + 2,
                    [
                        mk(Token::Comma),
                        mk(Token::make_word("PARTITION_BY", None)),
                        mk(Token::LParen),
                    ],
                );
                // find the end of the key list: a depth-0 comma before DESCRIPTOR, or the
                // closing paren of the call.
                let mut k = j + 3;
                let mut depth = 0i64;
                while k < toks.len() {
                    match toks.get(k).map(|t| &t.token) {
                        Some(Token::LParen) => depth += 1,
                        Some(Token::RParen) if depth == 0 => break,
                        Some(Token::RParen) => depth -= 1,
                        Some(Token::Comma)
                            if depth == 0 && is_word(toks.get(k + 1), "DESCRIPTOR") =>
                        {
                            break
                        }
                        _ => {}
                    }
                    k += 1;
                }
                toks.insert(k.min(toks.len()), mk(Token::RParen));
            }
        }
        i += 1;
    }
}

/// Remove `WATERMARK FOR col AS expr` from a CREATE TABLE column list.
fn extract_watermark(toks: &mut Vec<TokenWithSpan>) -> Result<Option<WatermarkDecl>, CompileError> {
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return Ok(None);
    };
    let Some(close) = matching_paren(toks, open) else {
        return Ok(None);
    };
    // Items of the column list at depth 1.
    let mut depth = 0;
    let mut item_start = open + 1;
    let mut found: Option<(usize, usize)> = None;
    for i in open..=close {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::LParen) => depth += 1,
            Some(Token::RParen) => {
                depth -= 1;
                if depth == 0 && is_word(toks.get(item_start), "WATERMARK") {
                    found = Some((item_start, i));
                }
            }
            Some(Token::Comma) if depth == 1 => {
                if is_word(toks.get(item_start), "WATERMARK") {
                    found = Some((item_start, i));
                    break;
                }
                item_start = i + 1;
            }
            _ => {}
        }
    }
    let Some((start, end)) = found else {
        return Ok(None);
    };
    let position = tok_pos(toks, start);
    let item: Vec<TokenWithSpan> = toks.get(start..end).map(|s| s.to_vec()).unwrap_or_default();
    // Remove the item with one separating comma.
    if is_tok(toks.get(start.wrapping_sub(1)), &Token::Comma) {
        toks.drain(start - 1..end);
    } else if is_tok(toks.get(end), &Token::Comma) {
        toks.drain(start..=end);
    } else {
        toks.drain(start..end);
    }
    if !is_word(item.get(1), "FOR") || !is_word(item.get(3), "AS") {
        return Err(CompileError::syntax(
            "expected WATERMARK FOR <column> AS <column> [- INTERVAL '<n>' <unit>]",
            position,
        ));
    }
    let column = match item.get(2).map(|t| &t.token) {
        Some(Token::Word(w)) => w.value.clone(),
        _ => {
            return Err(CompileError::syntax(
                "expected a column name after WATERMARK FOR",
                tok_pos(&item, 2).or(position),
            ))
        }
    };
    let expr = parse_expr_tokens(
        item.get(4..).map(|s| s.to_vec()).unwrap_or_default(),
        position,
    )?;
    let delay_ms = match &expr {
        Expr::Identifier(id) if id.value.eq_ignore_ascii_case(&column) => 0,
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::Minus,
            right,
        } if matches!(left.as_ref(), Expr::Identifier(id) if id.value.eq_ignore_ascii_case(&column)) => {
            match right.as_ref() {
                Expr::Interval(iv) => interval_ms(iv, position)?,
                _ => {
                    return Err(CompileError::syntax(
                        "the watermark delay must be an INTERVAL literal",
                        position,
                    ))
                }
            }
        }
        _ => {
            return Err(CompileError::unsupported(
                "WATERMARK must be `col` or `col - INTERVAL '<n>' <unit>`",
                position,
            ))
        }
    };
    if delay_ms < 0 {
        return Err(CompileError::plan(
            "the watermark delay must not be negative",
            position,
        ));
    }
    Ok(Some(WatermarkDecl {
        column,
        delay_ms,
        position,
    }))
}

/// Remove a `col AS PROCTIME()` item from a CREATE TABLE column list (Flink's
/// processing-time attribute), returning it. At most one per table.
fn extract_proctime_column(
    toks: &mut Vec<TokenWithSpan>,
) -> Result<Option<ProctimeColumn>, CompileError> {
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return Ok(None);
    };
    let Some(close) = matching_paren(toks, open) else {
        return Ok(None);
    };
    let mut found: Option<ProctimeColumn> = None;
    let mut item = open + 1;
    let mut index = 0usize;
    let mut i = open + 1;
    let mut close = close;
    let mut depth = 0usize;
    while i < close {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::LParen) => depth += 1,
            Some(Token::RParen) => depth = depth.saturating_sub(1),
            Some(Token::Comma) if depth == 0 => {
                item = i + 1;
                index += 1;
            }
            Some(Token::Word(_))
                if depth == 0
                    && i == item + 1
                    && is_word(toks.get(i), "AS")
                    && is_word(toks.get(i + 1), "PROCTIME")
                    && is_tok(toks.get(i + 2), &Token::LParen)
                    && is_tok(toks.get(i + 3), &Token::RParen) =>
            {
                let position = tok_pos(toks, item);
                let column = match toks.get(item).map(|t| &t.token) {
                    Some(Token::Word(w)) => w.value.clone(),
                    _ => {
                        return Err(CompileError::syntax(
                            "expected a column name before AS PROCTIME()",
                            position,
                        ))
                    }
                };
                if found.is_some() {
                    return Err(CompileError::plan(
                        "a table can have at most one PROCTIME() column",
                        position,
                    ));
                }
                found = Some(ProctimeColumn {
                    column,
                    index,
                    position,
                });
                // The item and one comma next to it (after it, else before it).
                let end = i + 4;
                let (from, to) = if is_tok(toks.get(end), &Token::Comma) {
                    (item, end + 1)
                } else if item > open + 1 {
                    (item - 1, end)
                } else {
                    (item, end)
                };
                if to >= close && from == open + 1 {
                    return Err(CompileError::plan(
                        "a table needs at least one column besides its PROCTIME() column",
                        position,
                    ));
                }
                toks.drain(from..to);
                close -= to - from;
                i = from;
                item = from;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(found)
}

/// Remove `METADATA [FROM 'key'] [VIRTUAL]` from the columns of a CREATE TABLE column
/// list, returning what each declared.
fn extract_metadata_columns(
    toks: &mut Vec<TokenWithSpan>,
) -> Result<Vec<MetadataColumn>, CompileError> {
    let mut found = Vec::new();
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return Ok(found);
    };
    let mut i = open + 1;
    // Each item of the column list: its first token is at `item`.
    let mut item = i;
    let mut depth = 0usize;
    while i < toks.len() {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::LParen) => depth += 1,
            Some(Token::RParen) if depth == 0 => break,
            Some(Token::RParen) => depth -= 1,
            Some(Token::Comma) if depth == 0 => item = i + 1,
            // `name TYPE … METADATA`: at least a name and a type before it.
            Some(Token::Word(_))
                if depth == 0 && i >= item + 2 && is_word(toks.get(i), "METADATA") =>
            {
                let position = tok_pos(toks, i);
                let column = match toks.get(item).map(|t| &t.token) {
                    Some(Token::Word(w)) => w.value.clone(),
                    _ => {
                        return Err(CompileError::syntax(
                            "METADATA must follow a column name and type",
                            position,
                        ))
                    }
                };
                let mut end = i + 1;
                let mut key = column.clone();
                if is_word(toks.get(end), "FROM") {
                    match toks.get(end + 1).map(|t| &t.token) {
                        Some(Token::SingleQuotedString(k)) => key = k.clone(),
                        _ => {
                            return Err(CompileError::syntax(
                                "expected a quoted metadata key after METADATA FROM",
                                tok_pos(toks, end + 1).or(position),
                            ))
                        }
                    }
                    end += 2;
                }
                let is_virtual = is_word(toks.get(end), "VIRTUAL");
                if is_virtual {
                    end += 1;
                }
                if found
                    .iter()
                    .any(|m: &MetadataColumn| m.column.eq_ignore_ascii_case(&column))
                {
                    return Err(CompileError::plan(
                        format!("column '{column}' is declared METADATA twice"),
                        position,
                    ));
                }
                found.push(MetadataColumn {
                    column,
                    key,
                    is_virtual,
                    position,
                });
                toks.drain(i..end);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(found)
}

/// The table option that `PARTITIONED BY (a, b)` becomes (`'a,b'`): the connector
/// (the filesystem sink) lays data out in `a=…/b=…/` directories.
pub const PARTITION_COLUMNS_OPTION: &str = "partition.columns";

/// `PARTITIONED BY`'s column names and the clause's position.
type PartitionedBy = (Vec<String>, Option<Position>);

/// Remove `PARTITIONED BY (col, …)` after the CREATE TABLE column list (Flink's DDL):
/// the column names and the clause's position.
fn extract_partitioned_by(
    toks: &mut Vec<TokenWithSpan>,
) -> Result<Option<PartitionedBy>, CompileError> {
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return Ok(None);
    };
    let Some(close) = matching_paren(toks, open) else {
        return Ok(None);
    };
    let at = close + 1;
    if !is_word(toks.get(at), "PARTITIONED") {
        return Ok(None);
    }
    let position = tok_pos(toks, at);
    if !is_word(toks.get(at + 1), "BY") || !is_tok(toks.get(at + 2), &Token::LParen) {
        return Err(CompileError::syntax(
            "expected PARTITIONED BY (column, ...)",
            position,
        ));
    }
    let Some(end) = matching_paren(toks, at + 2) else {
        return Err(CompileError::syntax(
            "unclosed PARTITIONED BY (...)",
            position,
        ));
    };
    let mut columns = Vec::new();
    let mut expect_name = true;
    for i in at + 3..end {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) if expect_name => {
                columns.push(w.value.clone());
                expect_name = false;
            }
            Some(Token::Comma) if !expect_name => expect_name = true,
            _ => {
                return Err(CompileError::syntax(
                    "PARTITIONED BY takes column names, separated by commas",
                    tok_pos(toks, i),
                ))
            }
        }
    }
    if columns.is_empty() {
        return Err(CompileError::syntax(
            "PARTITIONED BY needs at least one column",
            position,
        ));
    }
    if expect_name {
        return Err(CompileError::syntax(
            "PARTITIONED BY takes column names, separated by commas (one is missing after the last comma)",
            tok_pos(toks, end),
        ));
    }
    toks.drain(at..=end);
    Ok(Some((columns, position)))
}

/// The options of a `WITH (...)` clause, and where each key is written.
type WithOptions = (BTreeMap<String, String>, BTreeMap<String, Position>);

/// Remove `WITH ('k' = 'v', …)` after the CREATE TABLE column list.
fn extract_with_options(toks: &mut Vec<TokenWithSpan>) -> Result<WithOptions, CompileError> {
    let mut options = BTreeMap::new();
    let mut positions = BTreeMap::new();
    let Some(open) = toks.iter().position(|t| t.token == Token::LParen) else {
        return Ok((options, positions));
    };
    let Some(close) = matching_paren(toks, open) else {
        return Ok((options, positions));
    };
    let with = close + 1;
    if !is_word(toks.get(with), "WITH") || !is_tok(toks.get(with + 1), &Token::LParen) {
        return Ok((options, positions));
    }
    let Some(end) = matching_paren(toks, with + 1) else {
        return Err(CompileError::syntax(
            "unclosed WITH (...) options",
            tok_pos(toks, with),
        ));
    };
    let inner: Vec<TokenWithSpan> = toks
        .get(with + 2..end)
        .map(|s| s.to_vec())
        .unwrap_or_default();
    let mut i = 0;
    while i < inner.len() {
        let key_position = tok_pos(&inner, i);
        let key = match inner.get(i).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) | Some(Token::DoubleQuotedString(s)) => s.clone(),
            Some(Token::Word(w)) => {
                // dotted bare keys: a.b.c
                let mut k = w.value.clone();
                while is_tok(inner.get(i + 1), &Token::Period) {
                    if let Some(Token::Word(w2)) = inner.get(i + 2).map(|t| &t.token) {
                        k.push('.');
                        k.push_str(&w2.value);
                        i += 2;
                    } else {
                        break;
                    }
                }
                k
            }
            _ => {
                return Err(CompileError::syntax(
                    "expected an option key string in WITH (...)",
                    tok_pos(&inner, i).or(tok_pos(toks, with)),
                ))
            }
        };
        if !is_tok(inner.get(i + 1), &Token::Eq) {
            return Err(CompileError::syntax(
                "expected '=' after the option key",
                tok_pos(&inner, i + 1).or(tok_pos(&inner, i)),
            ));
        }
        let value = match inner.get(i + 2).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => s.clone(),
            Some(Token::Number(n, _)) => n.clone(),
            Some(Token::Word(w)) => w.value.clone(),
            _ => {
                return Err(CompileError::syntax(
                    "expected an option value string in WITH (...)",
                    tok_pos(&inner, i + 2).or(tok_pos(&inner, i)),
                ))
            }
        };
        if let Some(p) = key_position {
            positions.insert(key.clone(), p);
        }
        options.insert(key, value);
        i += 3;
        match inner.get(i).map(|t| &t.token) {
            None => {}
            Some(Token::Comma) => i += 1,
            Some(_) => {
                return Err(CompileError::syntax(
                    "expected ',' or ')' in WITH (...)",
                    tok_pos(&inner, i),
                ))
            }
        }
    }
    toks.drain(with..=end);
    Ok((options, positions))
}

fn remove_not_enforced(toks: &mut Vec<TokenWithSpan>) {
    let mut i = 0;
    while i + 1 < toks.len() {
        if is_word(toks.get(i), "NOT") && is_word(toks.get(i + 1), "ENFORCED") {
            toks.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
}

/// Milliseconds in one unit of a day-time interval field.
fn unit_ms(field: &DateTimeField) -> Option<i64> {
    Some(match field {
        DateTimeField::Millisecond | DateTimeField::Milliseconds => 1,
        DateTimeField::Second | DateTimeField::Seconds => 1_000,
        DateTimeField::Minute | DateTimeField::Minutes => 60_000,
        DateTimeField::Hour | DateTimeField::Hours => 3_600_000,
        DateTimeField::Day | DateTimeField::Days => 86_400_000,
        DateTimeField::Week(_) | DateTimeField::Weeks => 7 * 86_400_000,
        _ => return None,
    })
}

fn unit_ms_by_name(name: &str) -> Option<i64> {
    let n = name.to_ascii_lowercase();
    let n = n.trim_end_matches('s');
    Some(match n {
        "millisecond" | "m" => 1,
        "second" => 1_000,
        "minute" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        "week" => 7 * 86_400_000,
        _ => return None,
    })
}

fn scaled(number: &str, unit: i64, position: Option<Position>) -> Result<i64, CompileError> {
    let n = number.trim();
    let v: f64 = n
        .parse()
        .map_err(|_| CompileError::plan(format!("invalid interval value '{n}'"), position))?;
    let ms = (v * unit as f64).round();
    if !ms.is_finite() || ms.abs() > 9.0e15 {
        return Err(CompileError::plan("interval out of range", position));
    }
    Ok(ms as i64)
}

/// The length in ms of an `INTERVAL '<n>' <unit>` literal.
pub fn interval_ms(
    iv: &sqlparser::ast::Interval,
    position: Option<Position>,
) -> Result<i64, CompileError> {
    let (text, negative) = match iv.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => (s.clone(), false),
            Value::Number(n, _) => (n.to_string(), false),
            _ => {
                return Err(CompileError::plan(
                    "interval value must be a string or number",
                    position,
                ))
            }
        },
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => (s.clone(), true),
                Value::Number(n, _) => (n.to_string(), true),
                _ => return Err(CompileError::plan("invalid interval value", position)),
            },
            _ => return Err(CompileError::plan("invalid interval value", position)),
        },
        _ => {
            return Err(CompileError::unsupported(
                "interval values must be literals",
                position,
            ))
        }
    };
    if iv.last_field.is_some() {
        return Err(CompileError::unsupported(
            "compound intervals (… TO …) are not supported",
            position,
        ));
    }
    let ms = match &iv.leading_field {
        Some(field) => {
            if matches!(
                field,
                DateTimeField::Year
                    | DateTimeField::Years
                    | DateTimeField::Month
                    | DateTimeField::Months
            ) {
                return Err(CompileError::unsupported(
                    "year-month intervals are not supported",
                    position,
                ));
            }
            let unit = unit_ms(field).ok_or_else(|| {
                CompileError::unsupported(format!("unsupported interval unit {field}"), position)
            })?;
            scaled(&text, unit, position)?
        }
        None => {
            // `INTERVAL '5 seconds'` / `INTERVAL '5' ` (seconds? no: require a unit)
            let mut parts = text.split_whitespace();
            let (Some(n), Some(u), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(CompileError::plan(
                    format!("invalid interval '{text}': expected '<n> <unit>'"),
                    position,
                ));
            };
            let lower = u.to_ascii_lowercase();
            if lower.starts_with("year") || lower.starts_with("month") {
                return Err(CompileError::unsupported(
                    "year-month intervals are not supported",
                    position,
                ));
            }
            let unit = unit_ms_by_name(u).ok_or_else(|| {
                CompileError::plan(format!("unknown interval unit '{u}'"), position)
            })?;
            scaled(n, unit, position)?
        }
    };
    Ok(if negative { -ms } else { ms })
}

/// The number of tokens of `sql`, whitespace and comments not counted: how the
/// master checks that workflow parameters, substituted as values, left a task's SQL
/// with the structure of its template.
pub fn token_count(sql: &str) -> Result<usize, CompileError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| CompileError::syntax(e.message, position_of(e.location)))?;
    Ok(tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .count())
}

/// The source text of each statement of a script, in order, trimmed and without its
/// `;` (statements holding only whitespace are skipped). Quotes and comments are
/// respected, since the split follows the tokenizer. How the master keeps each
/// catalog table's own `CREATE TABLE` text when one request creates several.
pub fn statement_texts(sql: &str) -> Result<Vec<String>, CompileError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| CompileError::syntax(e.message, position_of(e.location)))?;
    // Byte offset of each line's start (lines and columns are 1-based, columns count
    // characters).
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |loc: Location| -> usize {
        let Some(&start) = usize::try_from(loc.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| line_starts.get(l))
        else {
            return sql.len();
        };
        let col = usize::try_from(loc.column).unwrap_or(1).saturating_sub(1);
        sql[start..]
            .char_indices()
            .nth(col)
            .map_or(sql.len(), |(i, _)| start + i)
    };
    let mut texts = Vec::new();
    let mut start = 0;
    let mut seen_token = false;
    for t in tokens {
        match t.token {
            Token::Whitespace(_) => {}
            Token::SemiColon | Token::EOF => {
                let end = if t.token == Token::EOF {
                    sql.len()
                } else {
                    offset(t.span.start)
                };
                if seen_token {
                    texts.push(sql[start.min(end)..end].trim().to_string());
                }
                start = (end + 1).min(sql.len());
                // (The tokenizer may end without an EOF token: the tail is taken below.)
                seen_token = false;
            }
            _ => seen_token = true,
        }
    }
    if seen_token {
        texts.push(sql[start..].trim().to_string());
    }
    Ok(texts)
}

/// Where the script's first bare query (a final `SELECT`, whose rows go to the client)
/// starts, when it parses and has one.
pub fn bare_query_position(sql: &str) -> Option<Position> {
    parse_script(sql).ok()?.into_iter().find_map(|s| match s {
        ParsedStatement::Other { stmt, position } if matches!(*stmt, Statement::Query(_)) => {
            position
        }
        _ => None,
    })
}

#[cfg(test)]
mod statement_text_tests {
    use super::statement_texts;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x INT) WITH ('k' = 'v;w');\n  -- c;\n\
                   CREATE TABLE \"b;\" (y VARCHAR) WITH ('connector' = 'print') ;\n;  \n";
        assert_eq!(
            statement_texts(sql).unwrap(),
            vec![
                "CREATE TABLE a (x INT) WITH ('k' = 'v;w')".to_string(),
                "-- c;\nCREATE TABLE \"b;\" (y VARCHAR) WITH ('connector' = 'print')".to_string(),
            ]
        );
        assert_eq!(
            statement_texts("SELECT 'é' AS x").unwrap(),
            vec!["SELECT 'é' AS x"]
        );
    }
}
