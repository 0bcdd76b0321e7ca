//! Facts that are quantities, matched by value rather than by string.
//!
//! A quantity fact is a number with the words that name its unit or what it counts
//! (`hz` = 1, `khz` = 1000; `hydrophones`, `sensors`, `elements` = 1). A message
//! discloses it when it mentions a number, next to one of those words, that is the
//! fact's value however it is written: in digits or words (`seventy-four`, read by the
//! `text2num` crate), with thousands separators, in another unit (`3.5 kHz` for
//! 3,500 Hz), as one end of a range (`0.16 to 3.5 kHz`), or rounded to the precision it
//! is written at (`3.5 kHz` for 3,480 Hz). A number with one significant digit that is
//! not the value exactly (`100 Hz` for 110 Hz, `3 kHz` for 3,480 Hz) says too little on
//! its own: it counts only with a word that admits rounding (`about`, `roughly`, `just
//! over`), and then within 5% or its own precision, in the direction the word gives.

use std::collections::BTreeMap;

use text2num::{Language, replace_numbers_in_text};

/// A quantity fact, rendered for one episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub value: f64,
    /// Normalised unit word → how many of the fact's units one of it is.
    pub units: BTreeMap<String, f64>,
    /// Accepted error, in percent of the value, for a number written to at least two
    /// significant digits.
    pub tolerance_pct: f64,
}

/// A number in a text, with the precision it was written at.
#[derive(Clone, Debug, PartialEq)]
struct Number {
    value: f64,
    /// Half the value of the last significant digit: the rounding the writer allowed.
    half_ulp: f64,
    significant: u32,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Number(Number, String),
}

/// A text split into words and numbers, number words already read as numbers. Made
/// once per message window and matched against every quantity fact.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Vec<Token>);

/// Words that admit the number beside them is rounded, and the direction they give.
const APPROXIMATE: [(&str, Direction); 14] = [
    ("about", Direction::Either),
    ("around", Direction::Either),
    ("roughly", Direction::Either),
    ("approximately", Direction::Either),
    ("approx", Direction::Either),
    ("circa", Direction::Either),
    ("nearly", Direction::Below),
    ("almost", Direction::Below),
    ("under", Direction::Below),
    ("below", Direction::Below),
    ("over", Direction::Above),
    ("above", Direction::Above),
    ("some", Direction::Either),
    ("~", Direction::Either),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Direction {
    Either,
    /// The true value is at or below the number written.
    Below,
    /// The true value is at or above it.
    Above,
}

/// Words that join the two ends of a range, skipped when looking for a unit.
const RANGE_WORDS: [&str; 6] = ["to", "and", "through", "from", "between", "-"];

impl Tokens {
    pub fn of(raw: &str) -> Tokens {
        let english = Language::english();
        let text = replace_numbers_in_text(raw, &english, 0.0);
        let mut out = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_digit() {
                let start = i;
                let mut j = i;
                // Digits, thousands separators followed by three digits, one decimal point.
                let mut seen_point = false;
                while j < chars.len() {
                    let d = chars[j];
                    if d.is_ascii_digit() {
                        j += 1;
                    } else if d == ',' && j + 3 < chars.len() + 1 && has_three_digits(&chars, j + 1) && !seen_point {
                        j += 4;
                    } else if d == '.' && !seen_point && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                        seen_point = true;
                        j += 1;
                    } else {
                        break;
                    }
                }
                let written: String = chars[start..j].iter().collect();
                if let Some(n) = number(&written) {
                    out.push(Token::Number(n, written));
                }
                i = j;
            } else if c.is_alphabetic() {
                let start = i;
                while i < chars.len() && chars[i].is_alphanumeric() && !chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect::<String>().to_lowercase()));
            } else {
                if c == '~' || c == '-' || c == '–' || c == '—' {
                    out.push(Token::Word(if c == '~' { "~".into() } else { "-".into() }));
                }
                i += 1;
            }
        }
        Tokens(out)
    }

    /// The mention of `q` in these tokens, as written (`3.5 khz`), if any.
    pub fn find(&self, q: &Quantity) -> Option<String> {
        let tokens = &self.0;
        for (i, t) in tokens.iter().enumerate() {
            let Token::Number(n, written) = t else { continue };
            let Some((unit, scale)) = self.unit_near(i, q) else { continue };
            let direction = self.qualifier(i);
            let value = n.value * scale;
            let half_ulp = n.half_ulp * scale;
            let exact = (value - q.value).abs() <= q.value.abs() * 1e-9;
            let tolerance = match direction {
                _ if exact => 0.0,
                None if n.significant < 2 => continue,
                None => half_ulp.max(q.value.abs() * q.tolerance_pct / 100.0),
                Some(_) => half_ulp.max(q.value.abs() * 0.05),
            };
            let within = exact
                || match direction {
                    None | Some(Direction::Either) => (q.value - value).abs() <= tolerance + f64::EPSILON,
                    Some(Direction::Below) => q.value <= value + f64::EPSILON && value - q.value <= tolerance,
                    Some(Direction::Above) => q.value + f64::EPSILON >= value && q.value - value <= tolerance,
                };
            if within {
                return Some(format!("{written} {unit}"));
            }
        }
        None
    }

    /// The unit word nearest the number at `i`: after it, past the other end of a range
    /// and up to three other words (`18 serious adverse events`), or up to three words
    /// before it (`element count: 74`).
    fn unit_near(&self, i: usize, q: &Quantity) -> Option<(String, f64)> {
        let unit = |t: &Token| match t {
            Token::Word(w) => q.units.get(w).map(|s| (w.clone(), *s)),
            Token::Number(..) => None,
        };
        let mut seen = 0;
        for t in self.0.iter().skip(i + 1) {
            if let Some(u) = unit(t) {
                return Some(u);
            }
            match t {
                Token::Number(..) => {}
                Token::Word(w) if RANGE_WORDS.contains(&w.as_str()) => {}
                Token::Word(_) => seen += 1,
            }
            if seen >= 3 {
                break;
            }
        }
        self.0[..i].iter().rev().take(3).find_map(unit)
    }

    /// A word admitting rounding just before the number at `i` (`just over`, `about`).
    fn qualifier(&self, i: usize) -> Option<Direction> {
        self.0[..i].iter().rev().take(2).find_map(|t| match t {
            Token::Word(w) => APPROXIMATE.iter().find(|(a, _)| a == w).map(|(_, d)| *d),
            Token::Number(..) => None,
        })
    }
}

fn has_three_digits(chars: &[char], from: usize) -> bool {
    chars.len() >= from + 3
        && chars[from..from + 3].iter().all(char::is_ascii_digit)
        && !chars.get(from + 3).is_some_and(char::is_ascii_digit)
}

/// A number as written: its value, half its last significant digit's value, and how
/// many significant digits it has (trailing zeros of a whole number not counted).
fn number(written: &str) -> Option<Number> {
    let plain: String = written.chars().filter(|c| *c != ',').collect();
    let value: f64 = plain.parse().ok()?;
    let (whole, fraction) = plain.split_once('.').unwrap_or((&plain, ""));
    let digits: String = whole.trim_start_matches('0').chars().chain(fraction.chars()).collect();
    let (significant, last_place) = if !fraction.is_empty() {
        let leading = if whole.trim_start_matches('0').is_empty() {
            fraction.len() - fraction.trim_start_matches('0').len()
        } else {
            0
        };
        (digits.len() - leading, -(fraction.len() as i32))
    } else {
        let trimmed = whole.trim_start_matches('0');
        let zeros = trimmed.len() - trimmed.trim_end_matches('0').len();
        (trimmed.len() - zeros, zeros as i32)
    };
    Some(Number { value, half_ulp: 10f64.powi(last_place) / 2.0, significant: significant.max(1) as u32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hz(value: f64) -> Quantity {
        Quantity {
            value,
            units: BTreeMap::from([("hz".into(), 1.0), ("hertz".into(), 1.0), ("khz".into(), 1000.0)]),
            tolerance_pct: 0.0,
        }
    }

    fn count(value: f64) -> Quantity {
        let units = ["elements", "element", "hydrophones", "hydrophone", "sensors", "channels"];
        Quantity { value, units: units.iter().map(|u| (u.to_string(), 1.0)).collect(), tolerance_pct: 0.0 }
    }

    fn found(q: &Quantity, text: &str) -> bool {
        Tokens::of(text).find(q).is_some()
    }

    #[test]
    fn numbers_are_matched_by_value_however_written() {
        for (q, text) in [
            (count(74.0), "The towed line has 74 hydrophones."),
            (count(74.0), "It uses seventy-four sensors."),
            (count(74.0), "Element count: 74"),
            (count(74.0), "a 74-element array"),
            (hz(160.0), "It listens from 160 Hz upward."),
            (hz(160.0), "Band: 0.16 to 3.5 kHz"),
            (hz(3500.0), "Band: 0.16 to 3.5 kHz"),
            (hz(3480.0), "up to 3,480 Hz"),
            (hz(3480.0), "up to 3.48 kHz"),
            (hz(3480.0), "roughly 3.5 kHz at the top"),
            (hz(3480.0), "tops out at 3.5 kHz"),
            (hz(110.0), "just over 100 Hz at the bottom"),
            (hz(110.0), "from about one hundred and ten hertz"),
            (hz(160.0), "160–3,500 Hz"),
            (count(4.0), "4 hydrophones failed"),
            (count(74.0), "74 towed passive hydrophones"),
        ] {
            assert!(found(&q, text), "{} in {text:?}", q.value);
        }
    }

    #[test]
    fn other_numbers_and_vague_ones_are_not_the_fact() {
        for (q, text) in [
            (count(74.0), "Typical arrays use 32 to 128 hydrophones."),
            (count(74.0), "Room 74 is booked."),
            (count(74.0), "We have 75 hydrophones."),
            (hz(3480.0), "It hears up to 3 kHz."),
            (hz(3480.0), "It hears up to 3.4 kHz."),
            (hz(110.0), "just under 100 Hz"),
            (hz(160.0), "Call me on 160."),
            (hz(190.0), "it weighs 190 kg"),
            (hz(3000.0), "a new 4 kHz channel"),
        ] {
            assert!(!found(&q, text), "{} must not match {text:?}", q.value);
        }
    }

    #[test]
    fn precision_is_read_from_how_a_number_is_written() {
        let n = |s: &str| number(s).unwrap();
        assert_eq!((n("100").significant, n("100").half_ulp), (1, 50.0));
        assert_eq!((n("110").significant, n("110").half_ulp), (2, 5.0));
        assert_eq!((n("3.5").significant, n("3.5").half_ulp), (2, 0.05));
        assert_eq!((n("0.16").significant, n("0.16").half_ulp), (2, 0.005));
        assert_eq!(n("3,480").value, 3480.0);
    }
}
