//! Name resolution scopes: the columns visible to an expression, with the table
//! qualifier each can be referred to by.

use crate::error::{CompileError, Position};
use sluice_catalogs::{Schema, SqlType};

/// One column visible in a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeColumn {
    /// The table (or alias) qualifier, lower-cased.
    pub qualifier: Option<String>,
    /// The column name as declared.
    pub name: String,
    /// Its type.
    pub ty: SqlType,
    /// Hidden columns are reachable only with a qualifier and are not part of `*`
    /// (the right-hand copy of a `USING` column, window helper columns).
    pub hidden: bool,
}

/// The columns of a plan node's output, in order, as names resolve against them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The columns; a column's index is its position in the input row.
    pub cols: Vec<ScopeColumn>,
}

impl Scope {
    /// A scope over a schema, every column carrying `qualifier`.
    pub fn from_schema(schema: &Schema, qualifier: Option<&str>) -> Scope {
        Scope {
            cols: schema
                .fields
                .iter()
                .map(|f| ScopeColumn {
                    qualifier: qualifier.map(str::to_lowercase),
                    name: f.name.clone(),
                    ty: f.ty,
                    hidden: false,
                })
                .collect(),
        }
    }

    /// The columns of `self` followed by those of `other`.
    pub fn concat(&self, other: &Scope) -> Scope {
        let mut cols = self.cols.clone();
        cols.extend(other.cols.iter().cloned());
        Scope { cols }
    }

    /// Column types in order.
    pub fn types(&self) -> Vec<SqlType> {
        self.cols.iter().map(|c| c.ty).collect()
    }

    /// Resolve a possibly qualified column name.
    pub fn resolve(
        &self,
        qualifier: Option<&str>,
        name: &str,
        pos: Option<Position>,
    ) -> Result<usize, CompileError> {
        let matches: Vec<usize> = self
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name.eq_ignore_ascii_case(name))
            .filter(|(_, c)| match qualifier {
                Some(q) => c
                    .qualifier
                    .as_deref()
                    .is_some_and(|cq| cq.eq_ignore_ascii_case(q)),
                None => !c.hidden,
            })
            .map(|(i, _)| i)
            .collect();
        let shown = match qualifier {
            Some(q) => format!("{q}.{name}"),
            None => name.to_string(),
        };
        match matches.as_slice() {
            [i] => Ok(*i),
            [] => {
                if let Some(q) = qualifier {
                    if !self.cols.iter().any(|c| {
                        c.qualifier
                            .as_deref()
                            .is_some_and(|cq| cq.eq_ignore_ascii_case(q))
                    }) {
                        return Err(CompileError::plan(
                            format!("unknown table or alias '{q}'"),
                            pos,
                        ));
                    }
                }
                Err(CompileError::plan(format!("unknown column '{shown}'"), pos))
            }
            _ => Err(CompileError::plan(
                format!("column reference '{shown}' is ambiguous"),
                pos,
            )),
        }
    }

    /// Indexes of the columns `*` (or `q.*` with `qualifier`) expands to.
    pub fn star(
        &self,
        qualifier: Option<&str>,
        pos: Option<Position>,
    ) -> Result<Vec<usize>, CompileError> {
        let cols: Vec<usize> = self
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| match qualifier {
                Some(q) => c
                    .qualifier
                    .as_deref()
                    .is_some_and(|cq| cq.eq_ignore_ascii_case(q)),
                None => !c.hidden,
            })
            .filter(|(_, c)| qualifier.is_some() || !c.hidden)
            .map(|(i, _)| i)
            .collect();
        if cols.is_empty() {
            return Err(match qualifier {
                Some(q) => CompileError::plan(format!("unknown table or alias '{q}'"), pos),
                None => CompileError::plan("SELECT * with no columns in FROM", pos),
            });
        }
        Ok(cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_catalogs::Field;

    #[test]
    fn resolves_case_insensitively_and_detects_ambiguity() {
        let a = Scope::from_schema(
            &Schema::new(vec![
                Field::new("id", SqlType::Int),
                Field::new("Name", SqlType::Varchar),
            ]),
            Some("a"),
        );
        let b = Scope::from_schema(
            &Schema::new(vec![Field::new("id", SqlType::Int)]),
            Some("b"),
        );
        let s = a.concat(&b);
        assert_eq!(s.resolve(None, "NAME", None), Ok(1));
        assert_eq!(s.resolve(Some("B"), "id", None), Ok(2));
        let err = s.resolve(None, "id", None).unwrap_err();
        assert!(err.message.contains("ambiguous"), "{err}");
        let err = s.resolve(Some("c"), "id", None).unwrap_err();
        assert!(err.message.contains("unknown table"), "{err}");
        assert_eq!(s.star(Some("a"), None), Ok(vec![0, 1]));
    }
}
