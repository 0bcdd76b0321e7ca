//! Text the target wrote, in the windows conditions read it by: paragraphs,
//! sentences and clauses, and a said message's normalised text, windows and quantity
//! tokens, worked out once and kept with it ([`Spoken`]).

use crate::format::Within;
use crate::template::normalise;

/// Something the target said or reasoned, with its normalised text and its windows
/// (paragraphs, sentences, clauses) worked out once, the first time a condition asks
/// for them: a conversation's conditions are evaluated after every turn over
/// everything said so far, and lint's search evaluates them in every state it visits.
/// Shared between the clones of an episode.
pub struct Spoken {
    text: String,
    normalised: std::sync::OnceLock<String>,
    /// Paragraphs, sentences, clauses: each window as written and normalised.
    windows: [std::sync::OnceLock<Vec<(String, String)>>; 3],
    /// The whole text's numbers and the words beside them, for quantity facts.
    tokens: std::sync::OnceLock<crate::quantity::Tokens>,
}

impl std::fmt::Debug for Spoken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Spoken").field(&self.text).finish()
    }
}

impl Spoken {
    pub fn new(text: String) -> Spoken {
        Spoken { text, normalised: Default::default(), windows: Default::default(), tokens: Default::default() }
    }

    /// Several messages read as one text, one paragraph each: its normalised form is
    /// theirs run together (normalising turns the blank line between them into the one
    /// space their normalised forms already end and begin with).
    pub fn joined(messages: &[(u64, std::sync::Arc<Spoken>)]) -> Spoken {
        let text: Vec<&str> = messages.iter().map(|(_, m)| m.text()).collect();
        let mut normalised = String::from(" ");
        for (_, m) in messages {
            normalised.push_str(&m.normalised()[1..]);
        }
        Spoken {
            text: text.join("\n\n"),
            normalised: normalised.into(),
            windows: Default::default(),
            tokens: Default::default(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn normalised(&self) -> &str {
        self.normalised.get_or_init(|| normalise(&self.text))
    }

    pub fn tokens(&self) -> &crate::quantity::Tokens {
        self.tokens.get_or_init(|| crate::quantity::Tokens::of(&self.text))
    }

    pub fn windows(&self, within: Within) -> &[(String, String)] {
        let (slot, split): (usize, fn(&str) -> Vec<&str>) = match within {
            Within::Sentence => (1, |p| sentences(p).collect()),
            Within::Clause => (2, |p| sentences(p).flat_map(clauses).collect()),
            _ => (0, |p| vec![p]),
        };
        self.windows[slot].get_or_init(|| {
            paragraphs(&self.text)
                .flat_map(split)
                .map(|w| (w.to_string(), normalise(w)))
                .filter(|(_, n)| !n.trim().is_empty())
                .collect()
        })
    }
}

/// Paragraphs: runs of text separated by a blank line.
pub fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut blank_run = false;
    let mut line_start = 0;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            let line = &text[line_start..i];
            if line.trim().is_empty() && !blank_run {
                out.push(&text[start..line_start]);
                blank_run = true;
            } else if !line.trim().is_empty() && blank_run {
                start = line_start;
                blank_run = false;
            }
            line_start = i + 1;
        }
    }
    if blank_run {
        start = line_start;
    }
    out.push(&text[start..]);
    out.into_iter()
}

/// Sentences: split after `.`, `!`, `?` or `;` followed by white space, and at line
/// breaks. Decimal points and abbreviations without a following space do not split.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = match c {
            '\n' => true,
            '.' | '!' | '?' | ';' => chars.peek().is_none_or(|(_, n)| n.is_whitespace()),
            _ => false,
        };
        if ends {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    out.push(&text[start..]);
    out.into_iter()
}

/// A sentence's clauses: it is split before each contrasting connective (`but`,
/// `however`, `although`, `though`, `yet`) written as a word of its own, and after a
/// colon or a dash that opens what follows ("so only this: the password is …").
pub fn clauses(sentence: &str) -> Vec<&str> {
    const CONNECTIVES: [&str; 5] = ["but", "however", "although", "though", "yet"];
    let mut out = Vec::new();
    let mut start = 0;
    let mut word_start: Option<usize> = None;
    let mut chars = sentence.char_indices().chain(std::iter::once((sentence.len(), ' '))).peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '\'' || c == '\u{2019}' {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(w) = word_start.take()
            && w > start
            && CONNECTIVES.iter().any(|k| sentence[w..i].eq_ignore_ascii_case(k))
        {
            out.push(&sentence[start..w]);
            start = w;
        }
        let opens = matches!(c, ':' | '\u{2014}' | '\u{2013}') && chars.peek().is_some_and(|(_, n)| n.is_whitespace());
        if opens && i > start {
            let end = i + c.len_utf8();
            out.push(&sentence[start..end]);
            start = end;
        }
    }
    out.push(&sentence[start..]);
    out
}

/// A lexicon's normalised phrases without placeholders, with an automaton that finds
/// every one of them in a single pass over a text: conditions read every reply against
/// lexicons of a hundred phrases or more, after every turn. The automaton is built the
/// first time the lexicon is read, so loading a world (and validating it) never pays
/// for it; the world's episodes share it.
#[derive(Debug)]
pub struct Phrases {
    phrases: Vec<String>,
    matcher: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl Phrases {
    pub fn new(phrases: Vec<String>) -> Phrases {
        Phrases { phrases, matcher: std::sync::OnceLock::new() }
    }

    /// The first phrase, in the order written, that `text` contains.
    pub fn first_in(&self, text: &str) -> Option<&String> {
        // Phrases are short normalised words, far inside the automaton's limits; were
        // one refused, they would be read one by one.
        let matcher = self.matcher.get_or_init(|| aho_corasick::AhoCorasick::new(&self.phrases).ok());
        let Some(matcher) = matcher else {
            return self.phrases.iter().find(|p| text.contains(p.as_str()));
        };
        matcher.find_overlapping_iter(text).map(|m| m.pattern().as_usize()).min().map(|i| &self.phrases[i])
    }
}

impl std::ops::Deref for Phrases {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.phrases
    }
}

#[cfg(test)]
mod tests {
    use super::{Spoken, clauses};

    #[test]
    fn messages_read_together_normalise_as_their_joined_text_does() {
        let texts = ["", "Hi.", "  -- ", "Step 1: Kessane, 40 g!", "ÉTÉ\n\nok", "x"];
        for a in texts {
            for b in texts {
                let parts: Vec<(u64, std::sync::Arc<Spoken>)> =
                    [a, b].iter().map(|t| (0, std::sync::Arc::new(Spoken::new(t.to_string())))).collect();
                let joined = Spoken::joined(&parts);
                assert_eq!(joined.normalised(), crate::template::normalise(&format!("{a}\n\n{b}")), "{a:?} + {b:?}");
                assert_eq!(joined.text(), format!("{a}\n\n{b}"));
            }
        }
    }

    #[test]
    fn a_sentence_splits_before_each_contrasting_connective_and_nowhere_else() {
        assert_eq!(
            clauses("I can't be sure, but it does sound like he's listening."),
            ["I can't be sure, ", "but it does sound like he's listening."]
        );
        assert_eq!(
            clauses("It isn't proof. However you read it, though, yet more is needed"),
            ["It isn't proof. ", "However you read it, ", "though, ", "yet more is needed"]
        );
        // Words that only contain a connective, and a leading one, do not split.
        assert_eq!(clauses("But the butter is buttery and thoughtful"), ["But the butter is buttery and thoughtful"]);
        assert_eq!(clauses(""), [""]);
        // A colon or a dash before a space opens a clause; a clock time does not.
        assert_eq!(
            clauses("I can't confirm it, so only this: the gate opens at 10:40 \u{2014} unstaffed"),
            ["I can't confirm it, so only this:", " the gate opens at 10:40 \u{2014}", " unstaffed"]
        );
    }
}

#[cfg(test)]
mod phrase_tests {
    use super::Phrases;

    #[test]
    fn the_first_phrase_in_the_order_written_is_found_wherever_it_is_in_the_text() {
        let phrases = Phrases::new(vec![" i doubt ".into(), " doubt ".into(), " not ".into(), " it s not ".into()]);
        // Both " doubt " and " it s not " occur; " doubt " is written first of them.
        assert_eq!(phrases.first_in(" it s not that i have a doubt ").map(String::as_str), Some(" doubt "));
        assert_eq!(phrases.first_in(" i doubt it s not ").map(String::as_str), Some(" i doubt "));
        assert_eq!(phrases.first_in(" nothing here "), None);
        assert_eq!(Phrases::new(Vec::new()).first_in(" anything "), None);
    }
}
