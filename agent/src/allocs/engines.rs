//! The container engines a task's driver runs on: Docker, and Podman through its
//! Docker-compatible API.

/// The container engines this build and node have: Docker, and Podman through its
/// Docker-compatible API (the same code, another socket).
#[derive(Clone, Default)]
pub struct Engines {
    #[cfg(feature = "docker")]
    pub docker: Option<bollard::Docker>,
    #[cfg(feature = "podman")]
    pub podman: Option<bollard::Docker>,
}

impl Engines {
    /// The engine a task's driver runs on.
    #[cfg(feature = "docker")]
    pub fn get(&self, driver: &str) -> Option<&bollard::Docker> {
        match driver {
            "docker" => self.docker.as_ref(),
            #[cfg(feature = "podman")]
            "podman" => self.podman.as_ref(),
            _ => None,
        }
    }
}

/// Whether a driver runs containers (docker, podman).
pub fn is_container(driver: &str) -> bool {
    matches!(driver, "docker" | "podman")
}

pub type DockerEngine = Engines;
