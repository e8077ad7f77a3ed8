//! `orca tree`: the supervision tree, one node per line.

use orca_actors::view::TreeNode;

use super::seconds;

/// Renders the tree with box-drawing branches.
pub fn tree(root: &TreeNode) -> String {
    let mut out = String::new();
    line(&mut out, root, "", "");
    walk(&mut out, root, "");
    out
}

fn walk(out: &mut String, node: &TreeNode, prefix: &str) {
    let n = node.children.len();
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == n;
        let (branch, cont) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        line(out, child, prefix, branch);
        walk(out, child, &format!("{prefix}{cont}"));
    }
}

fn line(out: &mut String, node: &TreeNode, prefix: &str, branch: &str) {
    let mut parts = vec![
        node.name.clone(),
        node.kind.as_str().to_string(),
        node.state.clone(),
    ];
    if let (Some(s), Some((max, within))) = (node.strategy, node.intensity) {
        parts.push(format!("{s} {max}/{}", seconds(within as f64 / 1000.0)));
    }
    if node.restarts > 0 {
        parts.push(format!(
            "{} restart{}",
            node.restarts,
            if node.restarts == 1 { "" } else { "s" }
        ));
    }
    if !node.detail.is_empty() {
        parts.push(node.detail.clone());
    }
    out.push_str(prefix);
    out.push_str(branch);
    out.push_str(&parts.join("  "));
    out.push('\n');
}
