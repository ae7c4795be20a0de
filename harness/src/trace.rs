//! A failing schedule's trace as the harness keeps it: every event with its
//! actor, stored whole in the failure file (gzip and base64 when long).

use base64::Engine as _;
use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::io::{Read, Write};

/// Traces longer than this are stored compressed.
const PLAIN_UP_TO: usize = 200;

/// One event: its number, who did it, what it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub seq: u64,
    pub actor: String,
    pub event: String,
    /// The kernel function a CPU's event was made in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub func: String,
}

impl Line {
    pub fn of(s: &hwmodel::Step) -> Self {
        Line { seq: s.seq, actor: s.actor.to_string(), event: s.event.to_string(), func: s.func.into() }
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>6} {:<14} {}", self.seq, self.actor, self.event)
    }
}

/// How a trace sits in the file.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Plain(Vec<Line>),
    Packed { events: usize, gzip_base64: String },
}

pub fn serialize<S: Serializer>(lines: &[Line], s: S) -> Result<S::Ok, S::Error> {
    if lines.len() <= PLAIN_UP_TO {
        return Stored::Plain(lines.to_vec()).serialize(s);
    }
    let json = serde_json::to_vec(lines).map_err(serde::ser::Error::custom)?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&json).and_then(|()| gz.flush()).map_err(serde::ser::Error::custom)?;
    let packed = gz.finish().map_err(serde::ser::Error::custom)?;
    let gzip_base64 = base64::engine::general_purpose::STANDARD.encode(packed);
    Stored::Packed { events: lines.len(), gzip_base64 }.serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Line>, D::Error> {
    use serde::de::Error;
    match Stored::deserialize(d)? {
        Stored::Plain(lines) => Ok(lines),
        Stored::Packed { events, gzip_base64 } => {
            let packed = base64::engine::general_purpose::STANDARD.decode(gzip_base64).map_err(D::Error::custom)?;
            let mut json = Vec::new();
            GzDecoder::new(packed.as_slice()).read_to_end(&mut json).map_err(D::Error::custom)?;
            let lines: Vec<Line> = serde_json::from_slice(&json).map_err(D::Error::custom)?;
            if lines.len() != events {
                return Err(D::Error::custom(format!("trace holds {} events, says {events}", lines.len())));
            }
            Ok(lines)
        }
    }
}
