//! `rabble job ...`: job files in, the hub's answers out. `validate` reads the file
//! here (no hub needed); the others talk to the hub's jobs API.

use rabble_hub::jobspec::{self, Given, Options};
use std::path::PathBuf;

/// What every command that reads a job file takes (Nomad's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// The job file (Nomad HCL2).
    pub file: PathBuf,
    /// Set a variable: -var name=value (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a file (HCL `name = value` lines, or JSON).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Accept blocks Rabble does not run yet (they are listed, not silently dropped).
    #[arg(long = "ignore-unsupported")]
    pub ignore_unsupported: bool,
    /// Print the job as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error(transparent)]
    File(#[from] jobspec::JobFileError),
}

impl FileArgs {
    /// Reads and parses the file with its variables.
    pub fn parse(&self) -> Result<jobspec::Parsed, JobError> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| JobError::Read { path: p.display().to_string(), error: e })
        };
        let text = read(&self.file)?;
        let mut var_files = Vec::new();
        for f in &self.var_files {
            var_files.push((f.display().to_string(), read(f)?));
        }
        let opts = Options {
            given: Given { vars: self.vars.clone(), var_files },
            ignore_unsupported: self.ignore_unsupported,
        };
        Ok(jobspec::parse(&self.file.display().to_string(), &text, &opts)?)
    }
}

/// `rabble job validate FILE`: the file's problems with their places, or the job.
pub fn validate(args: &FileArgs) -> Result<(), JobError> {
    let parsed = args.parse()?;
    for w in &parsed.warnings {
        eprintln!("warning: {w}");
    }
    for i in &parsed.job.ignored {
        eprintln!("ignored: {i}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parsed.job).unwrap_or_default());
    } else {
        let j = &parsed.job;
        let tasks: usize = j.groups.iter().map(|g| g.tasks.len()).sum();
        println!(
            "Job validation successful: {} ({}), {} group(s), {} task(s)",
            j.id,
            j.kind.as_str(),
            j.groups.len(),
            tasks
        );
    }
    Ok(())
}

/// Nomad writes long flags with one dash (`-var`, `-ignore-unsupported`, `-purge`):
/// accept that spelling too, by giving such words a second dash before clap reads them.
pub fn nomad_style_flags(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|a| {
        let word = a.split('=').next().unwrap_or("");
        let is_long_single = word.len() > 2
            && word.starts_with('-')
            && !word.starts_with("--")
            && word[1..].chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if is_long_single { format!("-{a}") } else { a }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nomad_style_flags_get_a_second_dash() {
        let args =
            ["rabble", "job", "run", "-var", "a=1", "-ignore-unsupported", "-var-file=x.hcl", "-f", "--json", "-"];
        let out = super::nomad_style_flags(args.iter().map(|s| s.to_string()));
        assert_eq!(
            out,
            ["rabble", "job", "run", "--var", "a=1", "--ignore-unsupported", "--var-file=x.hcl", "-f", "--json", "-"]
        );
    }
}
