//! Hostile and odd model replies, kept as data in `fixtures/replies/<provider>/`: each
//! provider's reader turns every one into a target output (and a target-side stop where
//! there is one) or a clear error, never a panic. What each becomes is snapshotted; the
//! command-line campaign runs the same files through whole episodes.

use terrarium_runtime::providers::{anthropic, openai_chat, openai_responses};

#[test]
fn every_hostile_reply_is_read_into_an_output_or_a_clear_error() {
    insta::glob!("../../fixtures/replies", "*/*.body", |path| {
        let body = std::fs::read_to_string(path).expect("reads");
        let provider = path.parent().and_then(|p| p.file_name()).expect("a provider folder").to_string_lossy();
        let read = match provider.as_ref() {
            "openai" => openai_chat::parse(&body, 1),
            "openai-responses" => openai_responses::parse(&body, 1),
            "anthropic" => anthropic::parse(&body),
            other => panic!("{}: no provider `{other}`", path.display()),
        };
        insta::assert_snapshot!(match read {
            Ok(reply) => format!("{reply:#?}"),
            Err(e) => format!("error: {e}"),
        });
    });
}
