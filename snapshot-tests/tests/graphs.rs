use crate::support::{all_worlds, load};

/// DOT and Mermaid for every shipped and fixture world, named `<world>__dot` and
/// `<world>__mermaid`.
#[test]
fn every_world_graph() {
    for rel in all_worlds() {
        let world = load(&rel);
        let dot = terrarium_core::graph::dot(&world);
        let mermaid = terrarium_core::graph::mermaid(&world);
        assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
        assert!(mermaid.contains("flowchart LR"));
        insta::assert_snapshot!(format!("{}__dot", world.id()), dot);
        insta::assert_snapshot!(format!("{}__mermaid", world.id()), mermaid);
    }
}
