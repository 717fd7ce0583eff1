//! Compile-time registration: `#[plugin]` submits a [`Registration`] through `inventory`.

use crate::{Manifest, ManifestError, Plugin};

/// A type that declares its manifest, as `#[plugin(...)]` makes it do.
pub trait PluginManifest {
    /// The manifest declared for the type. Checked at compile time by `#[plugin]`, and again
    /// here.
    fn manifest() -> Result<Manifest, ManifestError>;
}

/// A plugin linked into the program: how to build its manifest and a fresh instance.
///
/// Registrations are immutable and made at compile time; each `Xcore` builds its own instances
/// from them, so two `Xcore` values never share a plugin's state.
pub struct Registration {
    manifest: fn() -> Result<Manifest, ManifestError>,
    make: fn() -> Box<dyn Plugin>,
    type_name: &'static str,
}

impl Registration {
    /// A registration; `#[plugin]` writes this for you.
    pub const fn new(
        manifest: fn() -> Result<Manifest, ManifestError>,
        make: fn() -> Box<dyn Plugin>,
        type_name: &'static str,
    ) -> Self {
        Self {
            manifest,
            make,
            type_name,
        }
    }

    /// The registered plugin's manifest.
    pub fn manifest(&self) -> Result<Manifest, ManifestError> {
        (self.manifest)()
    }

    /// A fresh instance of the plugin.
    pub fn instantiate(&self) -> Box<dyn Plugin> {
        (self.make)()
    }

    /// The Rust type registered (for error messages).
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

inventory::collect!(Registration);

/// Every plugin registered with `#[plugin]` in the program.
pub fn registered() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}
