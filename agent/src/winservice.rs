//! The agent as a Windows service (`rabble-agent service install|uninstall`, as one would
//! `sc create` Nomad): installed to start at boot as `rabble-agent service run <the
//! flags given at install>`; the service manager's Stop ends it as CTRL_BREAK does, and
//! its log goes to `C:\ProgramData\rabble\agent.log` (a service has no console).

use std::ffi::OsString;
use std::sync::Mutex;
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceInfo,
    ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

pub const NAME: &str = "rabble-agent";
/// Where the service's log goes.
pub const LOG: &str = r"C:\ProgramData\rabble\agent.log";

/// What runs the agent once the service manager has started it: (its flags, a future that
/// resolves when the service is asked to stop) → the agent's outcome.
pub type Body = fn(Vec<OsString>, tokio::sync::oneshot::Receiver<()>) -> Result<(), String>;

static BODY: Mutex<Option<(Body, Vec<OsString>)>> = Mutex::new(None);

/// Registers the service: `service run` and `flags` (the command line's, without
/// `service install`), started at boot.
pub fn install(flags: Vec<OsString>) -> Result<String, String> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CREATE_SERVICE)
        .map_err(|e| format!("the service manager: {e} (run as Administrator)"))?;
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut launch: Vec<OsString> = vec!["service".into(), "run".into()];
    launch.extend(flags);
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: "Rabble agent".into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: launch,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| format!("creating the service {NAME}: {e}"))?;
    let _ = service.set_description("Rabble's node agent: facts, services, checks and work from the hub");
    Ok(format!("installed the service {NAME} ({}); start it with `sc start {NAME}`", exe.display()))
}

/// Stops the service if it runs, then removes it.
pub fn uninstall() -> Result<String, String> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| format!("the service manager: {e} (run as Administrator)"))?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = manager.open_service(NAME, access).map_err(|e| format!("the service {NAME}: {e}"))?;
    if service.query_status().is_ok_and(|s| s.current_state != ServiceState::Stopped) {
        let _ = service.stop();
        // The CLI has no runtime: a blocking wait, up to 10 s, for the agent to stop.
        for _ in 0..100 {
            if service.query_status().is_ok_and(|s| s.current_state == ServiceState::Stopped) {
                break;
            }
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    service.delete().map_err(|e| format!("removing the service {NAME}: {e}"))?;
    Ok(format!("removed the service {NAME}"))
}

/// Hands the process to the service manager, which calls `body` with `flags` on its
/// thread (through [`crate::win32::service_entry`]); returns when the service has stopped.
pub fn run(body: Body, flags: Vec<OsString>) -> Result<(), String> {
    *BODY.lock().unwrap_or_else(|e| e.into_inner()) = Some((body, flags));
    crate::win32::service_dispatcher(NAME)
        .map_err(|e| format!("not started by the service manager ({e}): `sc start {NAME}` starts it"))
}

/// The service's main, on the service manager's thread.
pub fn main(_arguments: Vec<OsString>) {
    let Some((body, flags)) = BODY.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let stop_tx = Mutex::new(Some(stop_tx));
    let handler = move |event| match event {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(tx) = stop_tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let Ok(status) = service_control_handler::register(NAME, handler) else { return };
    let set = |state, code: u32| {
        let _ = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(code),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    set(ServiceState::Running, 0);
    let outcome = body(flags, stop_rx);
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "the agent stopped");
    }
    set(ServiceState::Stopped, u32::from(outcome.is_err()));
}
