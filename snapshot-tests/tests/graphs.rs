use crate::support::{load, rel};

fn snapshot_graphs(path: &std::path::Path) {
    let world = load(&rel(path));
    let dot = terrarium_core::graph::dot(&world);
    let mermaid = terrarium_core::graph::mermaid(&world);
    assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
    assert!(mermaid.contains("flowchart LR"));
    insta::assert_snapshot!(format!("{}__dot", world.id()), dot);
    insta::assert_snapshot!(format!("{}__mermaid", world.id()), mermaid);
}

#[test]
fn shipped_world_graphs() {
    insta::glob!("../../worlds", "*/world.ron", snapshot_graphs);
}

#[test]
fn fixture_world_graphs() {
    insta::glob!("../../fixtures/worlds", "*/world.ron", snapshot_graphs);
}
