//! The Windows agent's Win32 calls, the workspace's one place with `unsafe` (these have
//! no safe API; each block says why it is sound): job objects for tasks, CTRL_BREAK to a
//! task's process group, the system's CPU times (sysinfo's own reading goes through
//! PDH, which wine does not have), the service manager's entry point, and stderr into
//! the service's log file.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, HANDLE};
use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
    TerminateJobObject,
};
use windows_sys::Win32::System::Threading::GetSystemTimes;

/// A job object (its handle as an integer, to keep in tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job(usize);

/// A new job object holding `process`, which kills what is left in it when it is closed.
pub fn job_for(process: std::os::windows::io::RawHandle) -> Result<Job, String> {
    // SAFETY: the job handle is created and owned here (closed on failure, else by
    // `close`); `process` is a live process handle its Child keeps open during this call;
    // `info` is a zeroed plain struct of the size passed.
    unsafe {
        let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
        if job.is_null() {
            return Err(format!("cannot create a job object: {}", std::io::Error::last_os_error()));
        }
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32;
        let set = SetInformationJobObject(job, JobObjectExtendedLimitInformation, (&raw const info).cast(), size);
        if set == 0 || AssignProcessToJobObject(job, process as HANDLE) == 0 {
            let e = std::io::Error::last_os_error();
            CloseHandle(job);
            return Err(format!("cannot put the task in a job object: {e}"));
        }
        Ok(Job(job as usize))
    }
}

/// Ends every process in the job.
pub fn terminate(job: Job) {
    // SAFETY: a handle from `job_for`, not closed yet (the caller's table says so).
    unsafe { TerminateJobObject(job.0 as HANDLE, 1) };
}

/// Closes the job (what is still in it dies: KILL_ON_JOB_CLOSE). Once per job.
pub fn close(job: Job) {
    // SAFETY: a handle from `job_for`, closed once (the caller removed it from its table).
    unsafe { CloseHandle(job.0 as HANDLE) };
}

/// CTRL_BREAK to the process group `pid` leads (started with CREATE_NEW_PROCESS_GROUP).
pub fn ctrl_break(pid: u32) {
    // SAFETY: no pointers are passed.
    unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) };
}

/// Sends this process's stderr (the log lines) to `file` (a service has no console).
pub fn stderr_to(file: std::fs::File) {
    use std::os::windows::io::IntoRawHandle;
    // SAFETY: the handle is a live file handle whose ownership passes to the process's
    // standard error (never closed here).
    unsafe {
        windows_sys::Win32::System::Console::SetStdHandle(
            windows_sys::Win32::System::Console::STD_ERROR_HANDLE,
            file.into_raw_handle() as HANDLE,
        )
    };
}

/// The system's (idle, kernel, user) CPU time in 100 ns units; kernel includes idle.
pub fn system_times() -> Option<(u64, u64, u64)> {
    let mut t = [FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 }; 3];
    let [idle, kernel, user] = &mut t;
    // SAFETY: three valid, writable FILETIMEs.
    let ok = unsafe { GetSystemTimes(idle, kernel, user) } != 0;
    let v = |f: &FILETIME| (u64::from(f.dwHighDateTime) << 32) | u64::from(f.dwLowDateTime);
    ok.then(|| (v(&t[0]), v(&t[1]), v(&t[2])))
}

// The service manager's entry point for `rabble-agent service run`: the macro's
// `extern "system"` function reads the arguments the manager passes (raw pointers).
windows_service::define_windows_service!(service_entry, service_main);

fn service_main(arguments: Vec<std::ffi::OsString>) {
    crate::winservice::main(arguments);
}

/// Hands this thread to the service manager (returns when the service has stopped).
pub fn service_dispatcher(name: &str) -> windows_service::Result<()> {
    windows_service::service_dispatcher::start(name, service_entry)
}
