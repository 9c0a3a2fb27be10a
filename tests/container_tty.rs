//! End-to-end: terminals. `exec -it`, `run -it` with ctrl-P ctrl-Q detach, and `attach`,
//! each driven through a pseudo-terminal the test owns.

mod common;

use common::container::{Env, IMAGE, Pty};
use common::unique;

#[test]
fn exec_it_through_a_pty() {
    let env = Env::new();
    let name = unique("ttyexec");
    env.ok(&[
        "container",
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sleep",
        "300",
    ]);
    let mut c = env.cmd();
    c.args(["container", "exec", "-it", &name, "sh"]);
    let mut pty = Pty::spawn(c);
    pty.send(b"tty; echo marker-$((6*7))\n");
    pty.expect("marker-42", 10);
    assert!(pty.output().contains("/dev/pts/"), "{}", pty.output());
    pty.send(b"exit 5\n");
    assert_eq!(pty.wait(10), Some(5));
    env.ok(&["container", "rm", "-f", &name]);
}

#[test]
fn run_it_detach_keys_then_attach() {
    let env = Env::new();
    let name = unique("ttyrun");
    let mut c = env.cmd();
    c.args(["container", "run", "-it", "--name", &name, IMAGE, "sh"]);
    let mut pty = Pty::spawn(c);
    pty.send(b"echo first-$((1+1))\n");
    pty.expect("first-2", 10);
    // ctrl-P ctrl-Q: the client leaves, the container keeps running.
    pty.send(&[0x10, 0x11]);
    assert_eq!(pty.wait(10), Some(0));
    assert_eq!(env.inspect(&name, "{{.State.Status}}"), "running");

    let mut c = env.cmd();
    c.args(["container", "attach", &name]);
    let mut pty = Pty::spawn(c);
    std::thread::sleep(std::time::Duration::from_millis(300));
    pty.send(b"echo again-$((2+2))\n");
    pty.expect("again-4", 10);
    pty.send(b"exit 3\n");
    assert_eq!(pty.wait(10), Some(3));
    env.wait_for(
        &name,
        "{{.State.Status}} {{.State.ExitCode}}",
        "exited 3",
        10,
    );
    // The session is in the log too.
    let logs = env.ok(&["container", "logs", &name]);
    assert!(
        logs.contains("first-2") && logs.contains("again-4"),
        "{logs}"
    );
}
