//! Search macros: `` `name` `` and `` `name(arg, ...)` `` expanded from ESCU's `macros/*.yml`,
//! as Splunk expands them (textually, `$arg$` replaced, nested macros expanded in turn).
//!
//! contentctl generates every detection's `` `<detection>_filter` `` macro as `search *` (a
//! hook for local tuning); such macros are not in `macros/`, so an undefined `*_filter` macro
//! expands to `search *`, which the lowering drops.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
struct MacroFile {
    name: String,
    definition: String,
    #[serde(default)]
    arguments: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Macro {
    pub definition: String,
    pub arguments: Vec<String>,
}

/// The macro table.
#[derive(Debug, Clone, Default)]
pub struct Macros {
    by_name: BTreeMap<String, Macro>,
}

const MAX_DEPTH: usize = 16;

impl Macros {
    /// Reads every `*.yml` of a `macros/` folder.
    pub fn load(dir: &Path) -> anyhow::Result<Macros> {
        let mut macros = Macros::default();
        let mut paths: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?.into_iter().map(|e| e.path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yml")) {
            let text = std::fs::read_to_string(&path)?;
            let file: MacroFile = serde_norway::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            macros.insert(&file.name, &file.definition, &file.arguments);
        }
        // Shipped in ESCU's app (`macros.conf` of DA-ESS-ContentUpdate), not among the YAML
        // macros: drops the data model's prefix from the field names of a `tstats` result.
        if macros.get("drop_dm_object_name").is_none() {
            macros.insert("drop_dm_object_name", "rename $data_model$.* as *", &["data_model".to_string()]);
        }
        Ok(macros)
    }

    pub fn insert(&mut self, name: &str, definition: &str, arguments: &[String]) {
        self.by_name.insert(
            name.to_string(),
            Macro { definition: definition.trim().to_string(), arguments: arguments.to_vec() },
        );
    }

    pub fn get(&self, name: &str) -> Option<&Macro> {
        self.by_name.get(name)
    }

    /// Expands every macro in `text`.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        self.expand_depth(text, 0)
    }

    fn expand_depth(&self, text: &str, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("macros nest too deep".into());
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('`') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find('`').ok_or("unterminated macro (a lone backtick)")?;
            let call = after[..end].trim();
            let expansion = self.expand_call(call)?;
            out.push_str(&self.expand_depth(&expansion, depth + 1)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn expand_call(&self, call: &str) -> Result<String, String> {
        let (name, args) = match call.find('(') {
            Some(open) if call.ends_with(')') => (call[..open].trim(), split_args(&call[open + 1..call.len() - 1])),
            _ => (call, Vec::new()),
        };
        let Some(m) = self.by_name.get(name) else {
            if name.ends_with("_filter") && args.is_empty() {
                return Ok("search *".into());
            }
            return Err(format!("macro `{name}` is not defined in macros/"));
        };
        if m.arguments.len() != args.len() {
            return Err(format!("macro `{name}` takes {} argument(s), given {}", m.arguments.len(), args.len()));
        }
        let mut definition = m.definition.clone();
        for (param, value) in m.arguments.iter().zip(&args) {
            definition = definition.replace(&format!("${param}$"), value);
        }
        Ok(definition)
    }
}

/// Splits macro arguments on top-level commas (outside quotes and parentheses).
fn split_args(text: &str) -> Vec<String> {
    let mut args = vec![String::new()];
    let mut depth = 0usize;
    let mut quote = false;
    for c in text.chars() {
        match c {
            '"' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth = depth.saturating_sub(1),
            ',' if !quote && depth == 0 => {
                args.push(String::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().expect("never empty").push(c);
    }
    let args: Vec<String> = args.into_iter().map(|a| a.trim().to_string()).collect();
    if args.len() == 1 && args[0].is_empty() {
        Vec::new()
    } else {
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Macros {
        let mut m = Macros::default();
        m.insert("cloudtrail", "sourcetype=aws:cloudtrail", &[]);
        m.insert("security_content_ctime", r#"convert timeformat="%Y-%m-%dT%H:%M:%S" ctime($field$)"#, &["field".into()]);
        m.insert("outer", "`cloudtrail` x=1", &[]);
        m
    }

    #[test]
    fn expands_arguments_nesting_and_filters() {
        let m = table();
        assert_eq!(
            m.expand("`outer` | `security_content_ctime(firstTime)` | `my_rule_filter`").unwrap(),
            r#"sourcetype=aws:cloudtrail x=1 | convert timeformat="%Y-%m-%dT%H:%M:%S" ctime(firstTime) | search *"#
        );
    }

    #[test]
    fn undefined_macros_and_wrong_arity_are_errors() {
        let m = table();
        assert!(m.expand("`drop_dm_object_name(x)`").unwrap_err().contains("not defined"));
        assert!(m.expand("`security_content_ctime`").unwrap_err().contains("takes 1"));
    }
}
