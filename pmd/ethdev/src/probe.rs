//! Probe strings and the driver registry.
//!
//! A probe string is `DRIVER[:HEAD][,KEY=VALUE...]`: `mana:emu,vports=2,wire=pair`,
//! `mana:sock=/run/mana.sock`, `null,size=64`, `ring:r0`. A value may itself contain commas
//! (`wire=tap:t0,t1`): an item without `=` after a `KEY=VALUE` item continues that value.
//! Drivers register a [`DriverFactory`]; [`Registry::probe`] finds the driver by name and hands
//! it the parsed [`ProbeArgs`]. Unknown drivers and arguments are errors that name the bad part.

use std::str::FromStr;

use crate::error::{EthError, EthResult};
use crate::port::{Port, PortDriver};

/// A parsed probe string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeArgs {
    /// The whole string.
    pub spec: String,
    /// The driver name.
    pub driver: String,
    /// The part after `DRIVER:` that is not `KEY=VALUE` (`emu` in `mana:emu,...`, the ring name
    /// in `ring:NAME`).
    pub head: Option<String>,
    /// `KEY=VALUE` pairs, in order.
    pub kv: Vec<(String, String)>,
}

impl ProbeArgs {
    /// Parses a probe string.
    pub fn parse(spec: &str) -> EthResult<Self> {
        let bad = |why: String| EthError::BadProbe { spec: spec.to_owned(), why };
        let spec_t = spec.trim();
        let split = spec_t.find([':', ',']).unwrap_or(spec_t.len());
        let driver = &spec_t[..split];
        if driver.is_empty() || !driver.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(format!("'{driver}' is not a driver name")));
        }
        let rest = spec_t.get(split + 1..).unwrap_or("");
        let mut head = None;
        let mut kv: Vec<(String, String)> = Vec::new();
        if !rest.is_empty() {
            for (i, item) in rest.split(',').enumerate() {
                match item.split_once('=') {
                    Some((k, v)) => {
                        if k.is_empty() {
                            return Err(bad(format!("'{item}' has no key")));
                        }
                        if kv.iter().any(|(x, _)| x == k) {
                            return Err(bad(format!("'{k}' is given twice")));
                        }
                        kv.push((k.to_owned(), v.to_owned()));
                    }
                    None if i == 0 && spec_t.as_bytes()[split] == b':' => {
                        head = Some(item.to_owned());
                    }
                    None => match kv.last_mut() {
                        Some((_, v)) => {
                            v.push(',');
                            v.push_str(item);
                        }
                        None => return Err(bad(format!("'{item}' is not KEY=VALUE"))),
                    },
                }
            }
        }
        Ok(ProbeArgs { spec: spec.to_owned(), driver: driver.to_owned(), head, kv })
    }

    /// An error about this probe string.
    pub fn error(&self, why: impl Into<String>) -> EthError {
        EthError::BadProbe { spec: self.spec.clone(), why: why.into() }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`, or `default` when absent.
    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> EthResult<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                self.error(format!("{key}={v}: not a valid {}", std::any::type_name::<T>()))
            }),
        }
    }

    /// Fails naming the first key not in `known`.
    pub fn only(&self, known: &[&str]) -> EthResult<()> {
        match self.kv.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            Some((k, _)) => Err(self.error(format!(
                "unknown argument '{k}' for driver {} (known: {})",
                self.driver,
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ))),
            None => Ok(()),
        }
    }
}

/// A driver that can make ports from probe strings.
pub trait DriverFactory: Send + Sync {
    /// The name probe strings use.
    fn name(&self) -> &'static str;
    /// One line on the probe string syntax, for error messages and `--help`.
    fn usage(&self) -> &'static str;
    /// The ports the probe string describes.
    fn probe(&self, args: &ProbeArgs) -> EthResult<Vec<Box<dyn PortDriver>>>;
}

/// The drivers an application can probe, and the ports it probed.
pub struct Registry {
    factories: Vec<Box<dyn DriverFactory>>,
    next_port: u16,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.factories.iter().map(|d| d.name()).collect();
        write!(f, "Registry({names:?}, next port {})", self.next_port)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry with the built-in `null` and `ring` drivers.
    pub fn new() -> Self {
        let mut r = Registry { factories: Vec::new(), next_port: 0 };
        r.add(Box::new(crate::null::NullFactory));
        r.add(Box::new(crate::ring::RingFactory));
        r
    }

    /// Adds a driver (replacing one of the same name).
    pub fn add(&mut self, f: Box<dyn DriverFactory>) {
        self.factories.retain(|x| x.name() != f.name());
        self.factories.push(f);
    }

    /// The usage lines of every driver.
    pub fn usage(&self) -> Vec<&'static str> {
        self.factories.iter().map(|f| f.usage()).collect()
    }

    /// Probes `spec`: the ports it describes, numbered after the ports probed before.
    pub fn probe(&mut self, spec: &str) -> EthResult<Vec<Port>> {
        let args = ProbeArgs::parse(spec)?;
        let f = self.factories.iter().find(|f| f.name() == args.driver).ok_or_else(|| {
            let names: Vec<_> = self.factories.iter().map(|f| f.name()).collect();
            args.error(format!("no driver '{}' (drivers: {})", args.driver, names.join(", ")))
        })?;
        let drivers = f.probe(&args)?;
        if drivers.is_empty() {
            return Err(args.error("describes no port"));
        }
        Ok(drivers
            .into_iter()
            .map(|d| {
                let id = self.next_port;
                self.next_port += 1;
                Port::new(id, d)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_strings_parse_with_heads_values_and_commas_in_values() {
        let a = ProbeArgs::parse("mana:emu,vports=2,wire=tap:t0,t1").unwrap();
        assert_eq!(a.driver, "mana");
        assert_eq!(a.head.as_deref(), Some("emu"));
        assert_eq!(a.get("vports"), Some("2"));
        assert_eq!(a.get("wire"), Some("tap:t0,t1"));
        let a = ProbeArgs::parse("mana:sock=/tmp/x.sock").unwrap();
        assert_eq!((a.head.as_deref(), a.get("sock")), (None, Some("/tmp/x.sock")));
        let a = ProbeArgs::parse("null,size=64").unwrap();
        assert_eq!(
            (a.driver.as_str(), a.head.as_deref(), a.get("size")),
            ("null", None, Some("64"))
        );
        let a = ProbeArgs::parse("ring:r0").unwrap();
        assert_eq!(a.head.as_deref(), Some("r0"));
        assert_eq!(ProbeArgs::parse("null").unwrap().kv, []);
    }

    #[test]
    fn bad_probe_strings_name_the_bad_part() {
        for (s, part) in [
            ("", "is not a driver name"),
            ("nu ll", "is not a driver name"),
            ("null,64", "'64' is not KEY=VALUE"),
            ("null,=4", "has no key"),
            ("null,size=1,size=2", "'size' is given twice"),
        ] {
            let e = ProbeArgs::parse(s).unwrap_err().to_string();
            assert!(e.contains(part), "{s}: {e}");
        }
        let a = ProbeArgs::parse("null,size=x").unwrap();
        assert!(a.parse_or("size", 0u16).unwrap_err().to_string().contains("size=x"));
        assert!(a.only(&["len"]).unwrap_err().to_string().contains("unknown argument 'size'"));
        let mut r = Registry::new();
        let e = r.probe("nope:x").unwrap_err().to_string();
        assert!(e.contains("no driver 'nope'") && e.contains("null"), "{e}");
    }
}
