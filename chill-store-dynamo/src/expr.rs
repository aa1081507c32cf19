//! Expressions with placeholders: every attribute name goes through `#name` (so that
//! DynamoDB's reserved words, `status` and `version` among them, never clash) and every value
//! through `:vN`. Empty placeholder maps are left out, as DynamoDB requires.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// Placeholders of one request's expressions.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// The placeholder of an attribute name.
    pub(crate) fn n(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_string());
        key
    }

    /// The placeholder of a value.
    pub(crate) fn v(&mut self, value: AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), value);
        key
    }

    /// `#attr = :v`
    pub(crate) fn eq(&mut self, attr: &str, value: AttributeValue) -> String {
        format!("{} = {}", self.n(attr), self.v(value))
    }

    /// `attribute_exists(#attr)`
    pub(crate) fn exists(&mut self, attr: &str) -> String {
        format!("attribute_exists({})", self.n(attr))
    }

    /// `attribute_not_exists(#attr)`
    pub(crate) fn absent(&mut self, attr: &str) -> String {
        format!("attribute_not_exists({})", self.n(attr))
    }

    /// The names map, `None` when empty.
    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The values map, `None` when empty.
    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// An update expression in parts: `SET ...  REMOVE ...  ADD ...`.
#[derive(Debug, Default)]
pub(crate) struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
}

impl Update {
    /// `SET #attr = :v`
    pub(crate) fn set(&mut self, x: &mut Expr, attr: &str, value: AttributeValue) -> &mut Self {
        let clause = x.eq(attr, value);
        self.set.push(clause);
        self
    }

    /// `SET #attr = :v` when `Some`, `REMOVE #attr` when `None`.
    pub(crate) fn set_or_remove(
        &mut self,
        x: &mut Expr,
        attr: &str,
        value: Option<AttributeValue>,
    ) -> &mut Self {
        match value {
            Some(v) => self.set(x, attr, v),
            None => self.remove(x, attr),
        }
    }

    /// `REMOVE #attr`
    pub(crate) fn remove(&mut self, x: &mut Expr, attr: &str) -> &mut Self {
        let name = x.n(attr);
        self.remove.push(name);
        self
    }

    /// `ADD #attr :v`
    pub(crate) fn add(&mut self, x: &mut Expr, attr: &str, value: AttributeValue) -> &mut Self {
        let clause = format!("{} {}", x.n(attr), x.v(value));
        self.add.push(clause);
        self
    }

    /// The expression.
    pub(crate) fn build(&self) -> String {
        let mut out = Vec::new();
        for (keyword, clauses) in [
            ("SET", &self.set),
            ("REMOVE", &self.remove),
            ("ADD", &self.add),
        ] {
            if !clauses.is_empty() {
                out.push(format!("{keyword} {}", clauses.join(", ")));
            }
        }
        out.join(" ")
    }
}
