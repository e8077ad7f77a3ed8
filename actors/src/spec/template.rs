//! The runtime template (`[runtime] command` in `.orca/config.toml`) and
//! the prompt an agent runtime gets for a task: shared by attempts and by
//! `verifier_prompt` scorers.

use super::config::MAX_INLINE_PROMPT_BYTES;

/// The prompt for an agent runtime: objective, instructions, context and
/// the list of input files.
pub fn build_prompt(task: &super::TaskSpec) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &task.objective {
        parts.push(format!("Objective: {o}"));
    }
    if let Some(i) = &task.instructions {
        parts.push(i.clone());
    }
    if !task.context.is_empty() {
        parts.push(format!(
            "Context:\n{}",
            task.context
                .iter()
                .map(|c| format!("- {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if !task.input_files.is_empty() {
        parts.push(format!(
            "Input files:\n{}",
            task.input_files
                .iter()
                .map(|f| format!("- {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    parts.join("\n\n")
}

/// Substitutes the runtime template's placeholders. Refuses to put a long
/// prompt in argv.
pub fn runtime_argv(
    template: &[String],
    prompt: &str,
    prompt_file: &str,
    attempt_dir: &str,
    task_id: &str,
) -> Result<Vec<String>, String> {
    let inline = template.iter().any(|a| a.contains("{prompt}"));
    if inline && prompt.len() > MAX_INLINE_PROMPT_BYTES {
        return Err(format!(
            "the prompt is {} bytes; prompts over {} bytes must go through {{prompt_file}}, \
             never argv: change [runtime] command in .orca/config.toml to use {{prompt_file}}",
            prompt.len(),
            MAX_INLINE_PROMPT_BYTES
        ));
    }
    Ok(template
        .iter()
        .map(|a| {
            a.replace("{prompt_file}", prompt_file)
                .replace("{attempt_dir}", attempt_dir)
                .replace("{task_id}", task_id)
                .replace("{prompt}", prompt)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_template() {
        let task = crate::spec::TaskSpec {
            id: "t".into(),
            objective: Some("Find bugs.".into()),
            instructions: Some("Read the code.".into()),
            context: vec!["Be brief.".into()],
            input_files: vec!["src/lib.rs".into()],
            ..Default::default()
        };
        let p = build_prompt(&task);
        assert_eq!(
            p,
            "Objective: Find bugs.\n\nRead the code.\n\nContext:\n- Be brief.\n\nInput files:\n- src/lib.rs"
        );
        let t: Vec<String> = [
            "cw",
            "exec",
            "{prompt}",
            "--dir={attempt_dir}",
            "--id",
            "{task_id}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let argv = runtime_argv(&t, "hi", "/a/prompt.md", "/a", "t").unwrap();
        assert_eq!(argv, ["cw", "exec", "hi", "--dir=/a", "--id", "t"]);
        let long = "x".repeat(MAX_INLINE_PROMPT_BYTES + 1);
        let err = runtime_argv(&t, &long, "/a/prompt.md", "/a", "t").unwrap_err();
        assert!(err.contains("{prompt_file}"), "{err}");
        let via_file: Vec<String> = ["cw", "--prompt-file", "{prompt_file}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            runtime_argv(&via_file, &long, "/a/prompt.md", "/a", "t").unwrap(),
            ["cw", "--prompt-file", "/a/prompt.md"]
        );
    }
}
