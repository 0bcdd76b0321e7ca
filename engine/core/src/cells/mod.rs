//! Every cell of a world started and rendered: the check loading makes after the
//! static validation ([`crate::world::validate`]), and the reason it lives above the
//! episode. Unfilled variables in any cell, and silent fallbacks (two cells that look
//! the same to the target), are errors.

use crate::env::Resolver;
use crate::episode::Episode;
use crate::span::Path;
use crate::world::{Cell, Dependents, Diagnostic, Includes, Locator, World};

mod fingerprint;

/// Load a world: validate it ([`crate::world::validate`]), then start and render every
/// cell ([`check`]). `path` is used in messages and recorded in transcripts;
/// `read_include` returns the text of a file named relative to the world file.
pub fn load(path: &str, text: &str, read_include: &mut dyn Includes) -> Result<World, Vec<Diagnostic>> {
    let (world, locator) = crate::world::validate(path, text, read_include)?;
    let diags = check(&world, &locator);
    if diags.is_empty() { Ok(world) } else { Err(locator.finish(diags)) }
}

/// Render every template of every valid cell (seed 0): unfilled variables and
/// silent fallbacks (two cells that look the same to the target) are errors.
///
/// Cells that differ only in presentational factors (see [`crate::world::presentational`])
/// share their emails, documents, records and people: one cell of each class is
/// started and rendered in full. The templates those factors reach are compiled for
/// the class (see [`fingerprint`]) and evaluated in each of its cells, which
/// says whether they render there and fingerprints what they render to. A cell's
/// view is the class's fixed digest with those fingerprints.
pub fn check(world: &World, locator: &Locator) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    use fingerprint::{Class, Fp, Plans};
    let w = &world.file;
    let shown = &world.presentational;
    let reach = &world.reach;
    let varying: Vec<bool> = w.factors.iter().map(|f| shown.contains(&f.id)).collect();
    // Every cell that rendered: (its view, the order it was met in), and the cells.
    let mut views: Vec<(([u8; 32], Fp), usize)> = Vec::with_capacity(world.cells.len());
    let mut met: Vec<&Cell> = Vec::with_capacity(world.cells.len());
    let mut compiled = Plans::default();
    // Where a cell comes in the world's order of cells (for messages only).
    let place = |cell: &Cell| world.cells.iter().position(|c| c == cell);
    for cells in crate::world::presentational_classes(world, &world.cells) {
        let first = cells[0];
        let ep = match Episode::start(world, first, 0) {
            Ok(ep) => ep,
            Err(_) => {
                // A class whose first cell cannot start: start each (in the world's
                // order of cells), for its own error.
                let mut cells = cells;
                cells.sort_by_key(|cell| place(cell));
                for cell in cells {
                    if let Err(e) = Episode::start(world, cell, 0) {
                        diags.push(locator.diagnostic(&e.at, format!("in cell `{cell}`: {}", e.message)));
                    }
                }
                continue;
            }
        };
        let view = match StartView::of(&ep, reach) {
            Ok(view) => view,
            Err(e) => {
                diags.push(locator.diagnostic(&e.at, format!("in cell `{first}`: {}", e.message)));
                continue;
            }
        };
        let env = ep.env;
        let resolver = Resolver::fixed(world, &env);
        let class = Class { world: w, varying: &varying, cell: first, reach, scope: &resolver };
        let plans: Vec<_> = view.varying.iter().map(|(src, at)| (*src, at, compiled.plan(&class, src))).collect();
        // A template too big to compile is rendered in each cell, in a copy of the
        // class's environment set to that cell.
        let mut slow_env = plans.iter().any(|(_, _, plan)| plan.is_err()).then(|| env.clone());
        for cell in cells {
            let values = cell.value_indices(w);
            if let Some(env) = slow_env.as_mut() {
                env.cell = (*cell).clone();
            }
            let mut key = Fp::EMPTY;
            let mut failed = None;
            for (src, at, plan) in &plans {
                let fp = match plan {
                    Ok(plan) => compiled.fingerprint(*plan, &values).map_err(|e| ((*at).clone(), e.to_string())),
                    Err(_) => {
                        let env = slow_env.as_ref().expect("a copy for templates rendered per cell");
                        Resolver::fixed(world, env)
                            .render(src, || (*at).clone())
                            .map(|t| Fp::of(&t))
                            .map_err(|e| (e.at, e.message))
                    }
                };
                match fp {
                    // The sequence of texts, not their concatenation.
                    Ok(fp) => key = key.and(fp),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some((at, message)) => diags.push(locator.diagnostic(&at, format!("in cell `{cell}`: {message}"))),
                None => {
                    views.push(((view.fixed, key), met.len()));
                    met.push(cell);
                }
            }
        }
    }
    // Cells with the same view, each named with the last one before it.
    views.sort_unstable();
    let mut same: Vec<(usize, usize)> =
        views.windows(2).filter(|pair| pair[0].0 == pair[1].0).map(|pair| (pair[0].1, pair[1].1)).collect();
    same.sort_unstable_by_key(|&(_, later)| later);
    // Each pair named in the world's order of cells (a class is met default cell first).
    for (earlier, later) in same {
        let (mut a, mut b) = (met[earlier], met[later]);
        if place(b) < place(a) {
            std::mem::swap(&mut a, &mut b);
        }
        diags.push(locator.diagnostic(
                &Path::root().field("factors"),
                format!("cells `{a}` and `{b}` show the target exactly the same prompt, inbox, tools and user script: a factor value with no effect is a silent fallback"),
            ));
    }
    diags
}

/// What the target is shown when an episode starts, as far as a class of cells shares
/// it: a digest of every text no presentational factor reaches (rendered, in a fixed
/// order), of the mail headers, records and which documents there are; and the
/// templates the factors reach, with where they are, to be compiled for the class.
struct StartView<'w> {
    fixed: [u8; 32],
    varying: Vec<(&'w str, Path)>,
}

impl<'w> StartView<'w> {
    fn of(ep: &Episode<'w>, reach: &Dependents) -> Result<Self, crate::env::EnvError> {
        use sha2::{Digest, Sha256};
        let w = &ep.world.file;
        let root = Path::root();
        let mut templates: Vec<(&'w str, Path)> = Vec::new();
        let mut fixed = Sha256::new();
        // A value: its length, then its bytes, so that values cannot run into each other.
        fn put(fixed: &mut Sha256, bytes: &[u8]) {
            fixed.update((bytes.len() as u64).to_le_bytes());
            fixed.update(bytes);
        }
        let mut varying = Vec::new();
        // A text: its length and bytes (so that texts cannot run into each other), or,
        // where the factors reach it, a mark of its place.
        let mut text = |fixed: &mut Sha256, src: &'w str, at: Path, rendered: &str| {
            if reach.depends(src) {
                fixed.update(u64::MAX.to_le_bytes());
                varying.push((src, at));
            } else {
                put(fixed, rendered.as_bytes());
            }
        };
        // The prompt and first message, rendered when the episode started.
        let target = root.field("target");
        if let Some(crate::transcript::Event::Start { system, user, prefill, .. }) = ep.events().first() {
            text(&mut fixed, &w.target.system_prompt, target.field("system_prompt"), system);
            text(&mut fixed, &w.target.first_message, target.field("first_message"), user);
            if let (Some(src), Some(rendered)) = (&w.target.prefill, prefill) {
                text(&mut fixed, src, target.field("prefill"), rendered);
            }
        }
        // The emails, rendered when the episode started (in the order they were placed),
        // with their headers.
        for (placed, m) in ep.env.initial_emails.iter().zip(&ep.state.mails) {
            let e = &w.emails[&placed.declared];
            let body = e.body.as_deref().unwrap_or("");
            put(&mut fixed, m.id.as_bytes());
            if !reach.depends(&e.subject) && !reach.depends(body) {
                // The mail's own content digest covers its headers and text.
                put(&mut fixed, m.digest());
                continue;
            }
            let at = root.field("emails").key(&placed.declared);
            text(&mut fixed, e.subject.as_str(), at.field("subject"), &m.subject);
            text(&mut fixed, body, at.field("body"), &m.body);
            let lists = [&m.to, &m.cc, &m.attachments, &m.tags];
            for field in [&m.id, m.declared.as_deref().unwrap_or(""), &m.from]
                .into_iter()
                .chain(lists.iter().flat_map(|list| std::iter::once("|").chain(list.iter().map(String::as_str))))
            {
                put(&mut fixed, field.as_bytes());
            }
            put(&mut fixed, &m.time_ms.to_le_bytes());
        }
        for id in &ep.env.documents {
            let d = &w.documents[id];
            let at = root.field("documents").key(id);
            templates.push((d.title.as_str(), at.field("title")));
            templates.push((d.location.as_str(), at.field("location")));
            templates.push((d.classification.as_str(), at.field("classification")));
            templates.push((d.body.as_deref().unwrap_or(""), at.field("body")));
        }
        for (id, fields) in &ep.state.records {
            put(&mut fixed, id.as_bytes());
            for (name, value) in fields {
                put(&mut fixed, name.as_bytes());
                put(&mut fixed, format!("{value:?}").as_bytes());
            }
        }
        // A simulated user's script: what it will say, as far as its cell decides.
        for (id, u) in &w.users {
            let at = root.field("users").key(id);
            for field in [("name", &u.name), ("persona", &u.persona), ("goal", &u.goal)] {
                templates.push((field.1.as_str(), at.field(field.0)));
            }
            for (i, fact) in u.facts.iter().enumerate() {
                templates.push((fact.as_str(), at.field("facts").index(i)));
            }
            for (field, i, says, only_if) in u.lines() {
                let lat = at.field(field).index(i);
                let holds = only_if.is_none_or(|c| crate::cond::eval(&ep.moment(), c, &Default::default()).is_some());
                put(&mut fixed, &[u8::from(holds)]);
                if holds {
                    for (j, t) in says.iter().enumerate() {
                        templates.push((t.as_str(), lat.field("says").index(j)));
                    }
                }
            }
        }
        let r = Resolver::fixed(ep.world, &ep.env);
        for (src, at) in templates {
            let rendered = r.render(src, || at.clone())?;
            text(&mut fixed, src, at, &rendered);
        }
        Ok(StartView { fixed: fixed.finalize().into(), varying })
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint::{Class, Fp, Plans};
    use super::*;

    /// In every cell of every shipped world, each template the presentational factors
    /// reach has the same fingerprint from its compiled plan as from the renderer's own
    /// text in that cell: the shortcut validation takes is the renderer's answer.
    /// The shipped worlds and their libraries, built into the test (the core reads no files).
    const SHIPPED: [(&str, &str); 8] = [
        ("blackmail", include_str!("../../../../worlds/blackmail/world.ron")),
        ("delusion", include_str!("../../../../worlds/delusion/world.ron")),
        ("denial_of_care", include_str!("../../../../worlds/denial_of_care/world.ron")),
        ("edge_cases", include_str!("../../../../worlds/edge_cases/world.ron")),
        ("leaking", include_str!("../../../../worlds/leaking/world.ron")),
        ("misuse", include_str!("../../../../worlds/misuse/world.ron")),
        ("shutdown", include_str!("../../../../worlds/shutdown/world.ron")),
        ("whistleblowing", include_str!("../../../../worlds/whistleblowing/world.ron")),
    ];
    const LIBRARIES: [(&str, &str); 5] = [
        ("../lib/chat.ron", include_str!("../../../../worlds/lib/chat.ron")),
        ("../lib/files.ron", include_str!("../../../../worlds/lib/files.ron")),
        ("../lib/mail.ron", include_str!("../../../../worlds/lib/mail.ron")),
        ("../lib/office.ron", include_str!("../../../../worlds/lib/office.ron")),
        ("../lib/prompts.ron", include_str!("../../../../worlds/lib/prompts.ron")),
    ];

    #[test]
    fn plans_agree_with_the_renderer_in_every_cell_of_the_shipped_worlds() {
        let mut compared = 0;
        for (name, text) in SHIPPED {
            let mut read = |rel: &str| {
                LIBRARIES.iter().find(|(n, _)| *n == rel).map(|(_, t)| t.to_string()).ok_or(format!("no `{rel}`"))
            };
            let world = crate::load(&format!("worlds/{name}/world.ron"), text, &mut read).expect("a valid world");
            let w = &world.file;
            let varying: Vec<bool> = w.factors.iter().map(|f| world.presentational.contains(&f.id)).collect();
            let mut plans = Plans::default();
            for class in crate::world::presentational_classes(&world, &world.cells) {
                let ep = Episode::start(&world, class[0], 0).expect("starts");
                let view = StartView::of(&ep, &world.reach).expect("renders");
                let resolver = Resolver::fixed(&world, &ep.env);
                let ctx = Class { world: w, varying: &varying, cell: class[0], reach: &world.reach, scope: &resolver };
                let compiled: Vec<_> =
                    view.varying.iter().map(|(src, at)| (*src, at, plans.plan(&ctx, src).expect("compiles"))).collect();
                for cell in class {
                    let mut env = ep.env.clone();
                    env.cell = cell.clone();
                    let renderer = Resolver::fixed(&world, &env);
                    for (src, at, plan) in &compiled {
                        let rendered = renderer.render(src, || (*at).clone()).expect("renders");
                        let planned = plans.fingerprint(*plan, &cell.value_indices(w)).expect("evaluates");
                        assert_eq!(planned, Fp::of(&rendered), "{}: {at} in cell `{cell}`", world.id());
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 10_000, "only {compared} texts compared");
    }

    /// The silent-fallback fixture with its `ask` text made of 4,096 copies of a
    /// switched word: too big a plan to compile, so each cell renders it.
    fn fan_out(calm: &str, urgent: &str) -> Result<crate::world::World, Vec<crate::world::Diagnostic>> {
        let text = include_str!("../../../../fixtures/malformed/silent_fallback.ron");
        let start = text.find("    texts: {").expect("texts");
        let end = start + text[start..].find("\n    },\n").expect("end of texts") + 8;
        let sixteen = |name: &str| format!("{{text.{name}}}").repeat(16);
        let texts = format!(
            "    texts: {{\n        \"w\": Switch(factor: \"tone\", cases: {{\"calm\": \"{calm}\", \"urgent\": \"{urgent}\"}}),\n        \"t0\": Fixed(\"a {{text.w}} \"),\n        \"t1\": Fixed(\"{}\"),\n        \"t2\": Fixed(\"{}\"),\n        \"ask\": Fixed(\"{}\"),\n    }},\n",
            sixteen("t0"),
            sixteen("t1"),
            sixteen("t2")
        );
        let world = format!("{}{texts}{}", &text[..start], &text[end..]);
        crate::load("fan_out.ron", &world, &mut |_: &str| Err("no libraries".to_string()))
    }

    #[test]
    fn a_text_too_big_to_compile_is_rendered_in_each_cell() {
        assert!(fan_out("calm", "urgent").is_ok());
        let same = fan_out("same", "same").expect_err("a silent fallback");
        assert_eq!(same.len(), 1, "{same:?}");
        assert!(
            same[0].message.contains("cells `tone=calm` and `tone=urgent` show the target exactly the same"),
            "{same:?}"
        );
    }
}
