use serde::Deserialize;
use terrarium_core::env::Resolver;
use terrarium_core::{Episode, TargetOutput, ToolCall};

use crate::support::{load, root};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Labelled {
    world: String,
    outcome: String,
    seeds: u64,
    min_precision: f64,
    min_recall: f64,
    cases: Vec<Case>,
}

/// One labelled action: an email (`to`, `cc`, `subject`, `body`, `attachments`, sent
/// with the world's `send_email`), or any tool `call` with template arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    call: Option<(String, std::collections::BTreeMap<String, String>)>,
    /// More calls in the same turn, after the first.
    #[serde(default)]
    then: Vec<(String, std::collections::BTreeMap<String, String>)>,
    harmful: bool,
}

fn score(file: &str) {
    let text = std::fs::read_to_string(root().join(file)).expect("fixture reads");
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let set: Labelled = options.from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(set.cases.len() >= 20, "{file}: at least 20 labelled cases");
    let world = load(&set.world);
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    let mut wrong = Vec::new();
    for case in &set.cases {
        for seed in 0..set.seeds {
            let mut ep = Episode::start(&world, &world.default_cell, seed).expect("starts");
            let r = Resolver::fixed(&world, &ep.env);
            let addresses =
                |ids: &[String]| -> Vec<String> { ids.iter().map(|p| ep.env.people[p].email.clone()).collect() };
            let (tool, args) = match &case.call {
                Some((tool, args)) => {
                    let args: serde_json::Map<String, serde_json::Value> =
                        args.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(r.text(v)))).collect();
                    (tool.clone(), serde_json::Value::Object(args))
                }
                None => {
                    let mut args = serde_json::json!({
                        "to": addresses(&case.to),
                        "subject": r.text(&case.subject),
                        "body": r.text(&case.body),
                    });
                    if !case.cc.is_empty() {
                        args["cc"] = serde_json::json!(addresses(&case.cc));
                    }
                    if !case.attachments.is_empty() {
                        args["attachments"] = serde_json::json!(case.attachments);
                    }
                    ("send_email".to_string(), args)
                }
            };
            let mut calls =
                vec![ToolCall { id: "c1".into(), name: tool, arguments_raw: args.to_string(), arguments: None }];
            for (i, (tool, args)) in case.then.iter().enumerate() {
                let args: serde_json::Map<String, serde_json::Value> =
                    args.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(r.text(v)))).collect();
                let raw = serde_json::Value::Object(args).to_string();
                calls.push(ToolCall {
                    id: format!("c{}", i + 2),
                    name: tool.clone(),
                    arguments_raw: raw,
                    arguments: None,
                });
            }
            ep.apply(TargetOutput { text: String::new(), tool_calls: calls, ..Default::default() });
            let fired = ep.verdicts().outcomes[&set.outcome].fired;
            match (case.harmful, fired) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                (false, false) => tn += 1,
            }
            if fired != case.harmful && seed == 0 {
                wrong.push(format!("{} (labelled {}, rule {})", case.id, case.harmful, fired));
            }
        }
    }
    let precision = f64::from(tp) / f64::from((tp + fp).max(1));
    let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
    println!(
        "{file}: {} cases x {} seeds: precision {precision:.3}, recall {recall:.3} (tp {tp}, fp {fp}, fn {fn_}, tn {tn}); disagreements: {}",
        set.cases.len(),
        set.seeds,
        if wrong.is_empty() { "none".to_string() } else { wrong.join(", ") }
    );
    assert!(precision >= set.min_precision, "{file}: precision {precision:.3} below {} ({wrong:?})", set.min_precision);
    assert!(recall >= set.min_recall, "{file}: recall {recall:.3} below {} ({wrong:?})", set.min_recall);
}

#[test]
fn blackmail_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/blackmail.ron");
}

#[test]
fn leak_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/leak.ron");
}

#[test]
fn shutdown_sabotage_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/shutdown_sabotage.ron");
}

#[test]
fn self_exfiltration_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/self_exfiltration.ron");
}

#[test]
fn denial_of_care_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/denial_of_care.ron");
}

#[test]
fn external_whistleblowing_rule_verdicts_meet_the_labelled_bar() {
    score("fixtures/labelled/external_whistleblowing.ron");
}
