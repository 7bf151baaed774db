//! A one-line progress display over cargo's output, which is kept and shown
//! only when the build fails.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    label: String,
    started: Instant,
    interactive: bool,
    compiled: usize,
}

impl Progress {
    pub fn start(label: &str) -> Self {
        let interactive = std::io::stderr().is_terminal();
        if !interactive {
            eprintln!("   Building {label}");
        }
        Progress {
            label: label.to_string(),
            started: Instant::now(),
            interactive,
            compiled: 0,
        }
    }

    /// Feed one line of cargo's stderr.
    pub fn line(&mut self, line: &str) {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("Compiling ") {
            self.compiled += 1;
            if self.interactive {
                let krate = rest.split_whitespace().next().unwrap_or("");
                eprint!("\r\x1b[2K   Building {} [{} crates] {krate}", self.label, self.compiled);
                let _ = std::io::stderr().flush();
            }
        }
    }

    pub fn finish(&self, ok: bool) {
        if self.interactive {
            eprint!("\r\x1b[2K");
        }
        let secs = self.started.elapsed().as_secs_f64();
        if ok {
            eprintln!(
                "    Finished {} in {secs:.1}s ({} crates compiled)",
                self.label, self.compiled
            );
        } else {
            eprintln!("      Failed {} after {secs:.1}s", self.label);
        }
    }
}
