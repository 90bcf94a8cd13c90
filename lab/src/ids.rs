//! Typed ids as agents type them: `h3` for a hypothesis, `e12` for an experiment.
//!
//! Ids are SQLite rowids, assigned inside IMMEDIATE transactions so they are
//! unique and gap-free; the prefix exists only at the edges (arguments, output).

use std::fmt;
use std::str::FromStr;

use crate::error::LabError;

macro_rules! typed_id {
    ($name:ident, $prefix:literal, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = LabError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.strip_prefix($prefix)
                    .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<i64>().ok())
                    .filter(|&n| n > 0)
                    .map($name)
                    .ok_or_else(|| {
                        LabError::usage(format!(
                            concat!("malformed ", $what, " id `{}`: expected ", $prefix, "<N>, like ", $prefix, "3"),
                            s
                        ))
                    })
            }
        }
    };
}

typed_id!(HypothesisId, "h", "hypothesis");
typed_id!(ExperimentId, "e", "experiment");
typed_id!(QueueId, "q", "queue item");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        assert_eq!("h3".parse::<HypothesisId>().unwrap(), HypothesisId(3));
        assert_eq!(ExperimentId(12).to_string(), "e12");
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in ["", "h", "3", "e3", "h-1", "h0", "h 3", "h3x", "h99999999999999999999", "H3"] {
            let err = bad.parse::<HypothesisId>().unwrap_err();
            assert!(err.message.contains("malformed hypothesis id"), "{bad}: {err}");
        }
    }
}
