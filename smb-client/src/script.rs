//! The smbclient command language: `ls; get REMOTE LOCAL; put LOCAL REMOTE; ...`.
//!
//! Commands are separated by `;` or newlines, words by spaces; double quotes keep spaces
//! (and `;`) inside one word, as in smbclient. Remote paths may use `/` or `\`.

use std::fmt;

/// One command of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ls [MASK]` / `dir [MASK]`: list the current directory (or what MASK names).
    Ls(Option<String>),
    /// `get REMOTE [LOCAL]`: copy a remote file to a local one (LOCAL defaults to REMOTE's name).
    Get { remote: String, local: String },
    /// `put LOCAL [REMOTE]`: copy a local file to the share (REMOTE defaults to LOCAL's name).
    Put { local: String, remote: String },
    /// `mkdir DIR` / `md DIR`.
    Mkdir(String),
    /// `rmdir DIR` / `rd DIR`.
    Rmdir(String),
    /// `rm FILE` / `del FILE`.
    Rm(String),
    /// `rename OLD NEW`.
    Rename { from: String, to: String },
    /// `cd [DIR]`: change the remote current directory (no argument prints it).
    Cd(Option<String>),
    /// `pwd`: print the remote current directory.
    Pwd,
    /// `lcd DIR`: change the local current directory.
    Lcd(String),
    /// `echo` — not smbclient's command of that name but a keep-alive (SMB2 ECHO).
    Echo,
    /// `exit` / `quit` / `q`: stop processing commands.
    Exit,
}

/// A command line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError(pub String);

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

/// Parses a whole `-c` script into commands. Empty commands (`;;`) are skipped.
pub fn parse_script(script: &str) -> Result<Vec<Command>, ScriptError> {
    let mut out = Vec::new();
    for words in split_commands(script)? {
        if let Some(cmd) = parse_words(&words)? {
            out.push(cmd);
        }
    }
    Ok(out)
}

/// Splits a script into commands, each a list of words, honoring double quotes.
fn split_commands(script: &str) -> Result<Vec<Vec<String>>, ScriptError> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in script.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            ';' | '\n' | '\r' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                commands.push(std::mem::take(&mut words));
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(ScriptError("unterminated double quote".into()));
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    Ok(commands)
}

/// The last component of a path written with `/` or `\`.
fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn parse_words(words: &[String]) -> Result<Option<Command>, ScriptError> {
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    let arity = |min: usize, max: usize, usage: &str| -> Result<(), ScriptError> {
        if args.len() < min || args.len() > max {
            Err(ScriptError(format!("usage: {usage}")))
        } else {
            Ok(())
        }
    };
    let cmd = match name.to_ascii_lowercase().as_str() {
        "ls" | "dir" => {
            arity(0, 1, "ls [mask]")?;
            Command::Ls(args.first().cloned())
        }
        "get" => {
            arity(1, 2, "get <remote name> [local name]")?;
            let remote = args[0].clone();
            let local = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| base_name(&remote).to_string());
            Command::Get { remote, local }
        }
        "put" => {
            arity(1, 2, "put <local name> [remote name]")?;
            let local = args[0].clone();
            let remote = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| base_name(&local).to_string());
            Command::Put { local, remote }
        }
        "mkdir" | "md" => {
            arity(1, 1, "mkdir <directory>")?;
            Command::Mkdir(args[0].clone())
        }
        "rmdir" | "rd" => {
            arity(1, 1, "rmdir <directory>")?;
            Command::Rmdir(args[0].clone())
        }
        "rm" | "del" => {
            arity(1, 1, "rm <file>")?;
            Command::Rm(args[0].clone())
        }
        "rename" => {
            arity(2, 2, "rename <old name> <new name>")?;
            Command::Rename {
                from: args[0].clone(),
                to: args[1].clone(),
            }
        }
        "cd" => {
            arity(0, 1, "cd [directory]")?;
            Command::Cd(args.first().cloned())
        }
        "pwd" => {
            arity(0, 0, "pwd")?;
            Command::Pwd
        }
        "lcd" => {
            arity(1, 1, "lcd <directory>")?;
            Command::Lcd(args[0].clone())
        }
        "echo" => Command::Echo,
        "exit" | "quit" | "q" | "bye" => Command::Exit,
        other => return Err(ScriptError(format!("{other}: command not found"))),
    };
    Ok(Some(cmd))
}

/// Joins the remote current directory and a path given by the user into a share-relative
/// SMB2 path with backslashes and no leading separator. `..` and `.` are resolved here;
/// `..` above the share root stays at the root (the server enforces the real boundary).
pub fn resolve_remote(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let absolute = path.starts_with(['/', '\\']);
    let base = if absolute { "" } else { cwd };
    for p in base.split(['/', '\\']).chain(path.split(['/', '\\'])) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let cmds = parse_script(
            "ls; get REMOTE LOCAL; put LOCAL REMOTE; mkdir DIR; rm FILE; rename OLD NEW",
        )
        .unwrap();
        assert_eq!(
            cmds,
            vec![
                Command::Ls(None),
                Command::Get {
                    remote: "REMOTE".into(),
                    local: "LOCAL".into()
                },
                Command::Put {
                    local: "LOCAL".into(),
                    remote: "REMOTE".into()
                },
                Command::Mkdir("DIR".into()),
                Command::Rm("FILE".into()),
                Command::Rename {
                    from: "OLD".into(),
                    to: "NEW".into()
                },
            ]
        );
    }

    #[test]
    fn quotes_keep_spaces_and_semicolons() {
        let cmds = parse_script(r#"put "my file;1.txt" "dir\other name.txt";;ls *.txt"#).unwrap();
        assert_eq!(
            cmds,
            vec![
                Command::Put {
                    local: "my file;1.txt".into(),
                    remote: "dir\\other name.txt".into()
                },
                Command::Ls(Some("*.txt".into())),
            ]
        );
        assert!(parse_script("get \"unterminated").is_err());
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(
            parse_script("get dir\\a.bin").unwrap(),
            vec![Command::Get {
                remote: "dir\\a.bin".into(),
                local: "a.bin".into()
            }]
        );
        assert_eq!(
            parse_script("put /tmp/x.txt").unwrap(),
            vec![Command::Put {
                local: "/tmp/x.txt".into(),
                remote: "x.txt".into()
            }]
        );
        assert!(parse_script("rename onlyone").is_err());
        assert!(parse_script("frobnicate").is_err());
        assert_eq!(parse_script(" ; \n ").unwrap(), vec![]);
    }

    #[test]
    fn remote_paths_resolve() {
        assert_eq!(resolve_remote("", "a/b.txt"), "a\\b.txt");
        assert_eq!(resolve_remote("dir", "x"), "dir\\x");
        assert_eq!(resolve_remote("dir\\sub", "..\\y"), "dir\\y");
        assert_eq!(resolve_remote("dir", "\\top"), "top");
        assert_eq!(resolve_remote("", "../../etc/passwd"), "etc\\passwd");
        assert_eq!(resolve_remote("d", "."), "d");
    }
}
