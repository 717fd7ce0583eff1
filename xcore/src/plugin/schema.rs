//! [`ActionSchema`]: what a typed action takes and returns, for the OpenAPI document.
//!
//! `#[actions]` emits one per `#[action]` method ([`Actions::action_schemas`](crate::Actions));
//! the web layer's [`openapi`](crate::web::openapi) document lists them as operations at
//! `POST {admin}/ipc/<plugin>/<action>`.
//!
//! | build | the input and output schemas |
//! |---|---|
//! | feature `openapi`, the type implements `schemars::JsonSchema` | its JSON Schema (2020-12), shared definitions under `#/components/schemas` |
//! | feature `openapi`, the type does not | none: any JSON (`{}`) |
//! | without `openapi` | none (the names, the doc and whether there is an input are still known) |
//!
//! The macro cannot see xcore's features: it calls [`SchemaProbe`] through two traits in
//! scope (`ProbeJsonSchema` implemented for `&SchemaProbe<T>` where `T: JsonSchema` under the
//! feature, `ProbeAny` for every `SchemaProbe<T>`); method resolution picks the first that
//! applies, so a type without `JsonSchema` never fails the build.

use std::{fmt, marker::PhantomData};

/// The schema of one typed action: its name, its documentation, whether it takes an input, and
/// (with feature `openapi`) the JSON Schemas of its input and output.
#[derive(Clone)]
pub struct ActionSchema {
    name: &'static str,
    doc: &'static str,
    has_input: bool,
    input: MaybeSchema,
    output: MaybeSchema,
}

impl ActionSchema {
    /// What `#[actions]` emits: the action `name`, its doc comment, and the schemas probed for
    /// its input (`None` when it takes none) and output.
    #[doc(hidden)]
    pub fn __new(
        name: &'static str,
        doc: &'static str,
        input: Option<MaybeSchema>,
        output: MaybeSchema,
    ) -> Self {
        Self {
            name,
            doc,
            has_input: input.is_some(),
            input: input.unwrap_or(MaybeSchema::NONE),
            output,
        }
    }

    /// The action's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The action method's doc comment (empty without one).
    pub fn doc(&self) -> &'static str {
        self.doc
    }

    /// Whether the action takes an input (a payload other than `null`).
    pub fn has_input(&self) -> bool {
        self.has_input
    }

    /// Whether a JSON Schema of the input is known.
    pub fn has_input_schema(&self) -> bool {
        self.input.is_some()
    }

    /// Whether a JSON Schema of the output is known.
    pub fn has_output_schema(&self) -> bool {
        self.output.is_some()
    }

    #[cfg(feature = "openapi")]
    pub(crate) fn input(&self) -> Option<SchemaFn> {
        self.input.get()
    }

    #[cfg(feature = "openapi")]
    pub(crate) fn output(&self) -> Option<SchemaFn> {
        self.output.get()
    }
}

impl fmt::Debug for ActionSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionSchema")
            .field("name", &self.name)
            .field("has_input", &self.has_input)
            .field("input_schema", &self.input.is_some())
            .field("output_schema", &self.output.is_some())
            .finish()
    }
}

/// How a schema is generated: a function of the document's schema generator, which collects
/// the named definitions under `#/components/schemas`.
#[cfg(feature = "openapi")]
pub(crate) type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// `T`'s schema (a `$ref` into the generator's definitions for named types).
#[cfg(feature = "openapi")]
pub(crate) fn schema_fn<T: schemars::JsonSchema + ?Sized>() -> SchemaFn {
    fn subschema<T: schemars::JsonSchema + ?Sized>(
        generator: &mut schemars::SchemaGenerator,
    ) -> schemars::Schema {
        generator.subschema_for::<T>()
    }
    subschema::<T>
}

/// A schema the probe found, or none.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct MaybeSchema(#[cfg(feature = "openapi")] Option<SchemaFn>);

impl MaybeSchema {
    const NONE: Self = Self(
        #[cfg(feature = "openapi")]
        None,
    );

    /// `T`'s schema.
    #[cfg(feature = "openapi")]
    pub(crate) fn of<T: schemars::JsonSchema + ?Sized>() -> Self {
        Self(Some(schema_fn::<T>()))
    }

    /// The schema's function, if there is one.
    #[cfg(feature = "openapi")]
    pub(crate) fn get(&self) -> Option<SchemaFn> {
        self.0
    }

    pub(crate) fn is_some(&self) -> bool {
        #[cfg(feature = "openapi")]
        return self.0.is_some();
        #[cfg(not(feature = "openapi"))]
        false
    }
}

/// Finds `T`'s schema where there is one (see the module docs).
#[doc(hidden)]
pub struct SchemaProbe<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

impl<T: ?Sized> SchemaProbe<T> {
    /// A probe for `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }

    /// No schema (a type the macro cannot name).
    pub fn none() -> MaybeSchema {
        MaybeSchema::NONE
    }
}

/// The probe of a type with a schema (feature `openapi`, `T: JsonSchema`).
#[doc(hidden)]
pub trait ProbeJsonSchema {
    /// The schema.
    fn probe(&self) -> MaybeSchema;
}

#[cfg(feature = "openapi")]
impl<T: schemars::JsonSchema + ?Sized> ProbeJsonSchema for &SchemaProbe<T> {
    fn probe(&self) -> MaybeSchema {
        MaybeSchema::of::<T>()
    }
}

/// The probe of any type: no schema.
#[doc(hidden)]
pub trait ProbeAny {
    /// No schema.
    fn probe(&self) -> MaybeSchema {
        MaybeSchema::NONE
    }
}

impl<T: ?Sized> ProbeAny for SchemaProbe<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Opaque;

    #[test]
    #[allow(clippy::needless_borrow)] // The borrows are the probe: `&&` picks `ProbeJsonSchema`.
    fn probes_pick_the_schema_when_there_is_one() {
        #[allow(unused_imports)]
        use super::{ProbeAny as _, ProbeJsonSchema as _};
        let opaque = (&&SchemaProbe::<Opaque>::new()).probe();
        assert!(!opaque.is_some());
        let number = (&&SchemaProbe::<u32>::new()).probe();
        assert_eq!(number.is_some(), cfg!(feature = "openapi"));
        let schema = ActionSchema::__new("count", "How many.", None, number);
        assert!(!schema.has_input());
        assert_eq!(schema.has_output_schema(), cfg!(feature = "openapi"));
    }
}
