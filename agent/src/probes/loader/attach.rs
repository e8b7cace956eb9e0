//! One attach function per probe, so a new probe (the GPU uprobes next) is one more
//! function called where the loader attaches. Each falls back from BTF tracepoints to
//! raw tracepoints (and, for sched_switch, classic ones) and says which one took.
use std::os::fd::RawFd;

use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, Program, RawTracePoint, TracePoint},
};

use super::{LoadError, error_chain};

/// What every attach function works on: the loaded object, the kernel's BTF if any,
/// and the notes the user will see.
pub(super) struct Attacher<'a> {
    pub ebpf: &'a mut Ebpf,
    pub btf: Option<&'a Btf>,
    pub notes: &'a mut Vec<String>,
}

impl Attacher<'_> {
    /// A lifecycle program on its tracepoint; a non-BTF attach is noted where BTF exists.
    fn lifecycle(&mut self, prefix: &'static str, tracepoint: &str) -> Result<(), LoadError> {
        let kind = attach_with_fallback(self.ebpf, prefix, tracepoint, self.btf, false)?;
        if kind != "tp_btf" && self.btf.is_some() {
            self.notes.push(format!("{tracepoint} attached as {kind}"));
        }
        Ok(())
    }
}

/// Forks: new processes and threads, with the child's ids and start time.
pub(super) fn attach_lifecycle_fork(at: &mut Attacher) -> Result<(), LoadError> {
    at.lifecycle("lifecycle_fork", "sched_process_fork")
}

/// Execs: a process's new name.
pub(super) fn attach_lifecycle_exec(at: &mut Attacher) -> Result<(), LoadError> {
    at.lifecycle("lifecycle_exec", "sched_process_exec")
}

/// Exits: the leaving thread's running slice is charged, then the exit is reported.
pub(super) fn attach_lifecycle_exit(at: &mut Attacher) -> Result<(), LoadError> {
    at.lifecycle("lifecycle_exit", "sched_process_exit")
}

/// Renames: thread names set after the thread started.
pub(super) fn attach_lifecycle_rename(at: &mut Attacher) -> Result<(), LoadError> {
    at.lifecycle("lifecycle_rename", "task_rename")
}

/// The ledger's sched_switch program; returns how it was hooked (`tp_btf`, `raw_tp`
/// or `tracepoint`).
pub(super) fn attach_ledger_switch(at: &mut Attacher) -> Result<String, LoadError> {
    attach_with_fallback(at.ebpf, "ledger_switch", "sched_switch", at.btf, true)
}

/// Loads (without attaching) the tick flush program and returns its fd, which stays
/// valid while the object lives; without it a note says what is lost.
pub(super) fn load_ledger_flush(at: &mut Attacher) -> Option<RawFd> {
    match load_unattached_raw(at.ebpf, "ledger_flush") {
        Ok(fd) => Some(fd),
        Err(err) => {
            at.notes.push(format!(
                "no tick flush ({err}): a thread that holds its CPU is charged at its next switch"
            ));
            None
        }
    }
}

/// Attaches `<prefix>_btf`, else `<prefix>_raw`, else (`classic`) `<prefix>_tp`;
/// returns which one took.
pub fn attach_with_fallback(
    ebpf: &mut Ebpf,
    prefix: &'static str,
    tracepoint: &str,
    btf: Option<&Btf>,
    classic: bool,
) -> Result<String, LoadError> {
    let mut tried = Vec::new();
    if let Some(btf) = btf {
        match attach_one(ebpf, &format!("{prefix}_btf"), |prog| match prog {
            Program::BtfTracePoint(p) => attach_btf(p, tracepoint, btf),
            _ => Err("not a tp_btf program".to_string()),
        }) {
            Ok(()) => return Ok("tp_btf".to_string()),
            Err(err) => tried.push(format!("tp_btf: {err}")),
        }
    }
    match attach_one(ebpf, &format!("{prefix}_raw"), |prog| match prog {
        Program::RawTracePoint(p) => attach_raw(p, tracepoint),
        _ => Err("not a raw_tp program".to_string()),
    }) {
        Ok(()) => return Ok("raw_tp".to_string()),
        Err(err) => tried.push(format!("raw_tp: {err}")),
    }
    if classic {
        match attach_one(ebpf, &format!("{prefix}_tp"), |prog| match prog {
            Program::TracePoint(p) => attach_classic(p, tracepoint),
            _ => Err("not a tracepoint program".to_string()),
        }) {
            Ok(()) => return Ok("tracepoint".to_string()),
            Err(err) => tried.push(format!("tracepoint: {err}")),
        }
    }
    Err(LoadError::Attach {
        what: prefix,
        tried: tried.join("; "),
    })
}

fn attach_one(
    ebpf: &mut Ebpf,
    name: &str,
    attach: impl FnOnce(&mut Program) -> Result<(), String>,
) -> Result<(), String> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?;
    attach(prog)
}

fn attach_btf(prog: &mut BtfTracePoint, tracepoint: &str, btf: &Btf) -> Result<(), String> {
    prog.load(tracepoint, btf).map_err(|e| error_chain(&e))?;
    prog.attach().map(drop).map_err(|e| error_chain(&e))
}

fn attach_raw(prog: &mut RawTracePoint, tracepoint: &str) -> Result<(), String> {
    prog.load().map_err(|e| error_chain(&e))?;
    prog.attach(tracepoint)
        .map(drop)
        .map_err(|e| error_chain(&e))
}

fn attach_classic(prog: &mut TracePoint, tracepoint: &str) -> Result<(), String> {
    prog.load().map_err(|e| error_chain(&e))?;
    prog.attach("sched", tracepoint)
        .map(drop)
        .map_err(|e| error_chain(&e))
}

fn load_unattached_raw(ebpf: &mut Ebpf, name: &str) -> Result<RawFd, String> {
    use std::os::fd::{AsFd, AsRawFd};
    let prog: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing"))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| error_chain(&e))?;
    prog.load().map_err(|e| error_chain(&e))?;
    let fd = prog.fd().map_err(|e| error_chain(&e))?;
    Ok(fd.as_fd().as_raw_fd())
}
