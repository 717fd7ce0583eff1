//! [`Operation`]: the documentation of one endpoint.

use std::{borrow::Cow, fmt};

use crate::plugin::schema::MaybeSchema;

/// The documentation of one endpoint of [`Routes`](crate::web::Routes): a summary, a
/// description, tags, the JSON request body and the responses, each with the schema of its
/// Rust type (feature `openapi`).
///
/// Attach it to the endpoint declared last with [`Routes::doc`](crate::web::Routes::doc) or
/// the axum builder's [`RoutesBuilder::doc`](crate::web::axum::RoutesBuilder::doc). Every
/// operation of the document also answers the shared error envelope
/// (`#/components/schemas/Error`) as its `default` response.
///
/// ```
/// use xcore::web::openapi::Operation;
///
/// let op = Operation::new()
///     .summary("Registers a user")
///     .status(204, "Registered")
///     .error(409)
///     .error(422);
/// assert_eq!(op.statuses().collect::<Vec<_>>(), [204, 409, 422]);
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Operation {
    pub(crate) summary: Option<Cow<'static, str>>,
    pub(crate) description: Option<Cow<'static, str>>,
    pub(crate) tags: Vec<Cow<'static, str>>,
    pub(crate) operation_id: Option<Cow<'static, str>>,
    pub(crate) deprecated: bool,
    pub(crate) body: Option<MaybeSchema>,
    pub(crate) responses: Vec<ResponseDoc>,
}

/// One documented response.
#[derive(Clone)]
pub(crate) struct ResponseDoc {
    pub(crate) status: u16,
    pub(crate) description: Option<Cow<'static, str>>,
    /// Read by the document (feature `openapi`).
    #[cfg_attr(not(feature = "openapi"), allow(dead_code))]
    pub(crate) content: Content,
}

/// What a documented response carries.
#[derive(Clone)]
#[cfg_attr(not(feature = "openapi"), allow(dead_code))]
pub(crate) enum Content {
    /// No body.
    Empty,
    /// A JSON body of a schema (none known: any JSON).
    Json(MaybeSchema),
    /// The error envelope.
    Error,
}

impl Operation {
    /// An operation documented with nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A one-line summary.
    pub fn summary(mut self, summary: impl Into<Cow<'static, str>>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// A longer description (CommonMark).
    pub fn description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// A tag, besides the plugin's name (every plugin operation is tagged with it).
    pub fn tag(mut self, tag: impl Into<Cow<'static, str>>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// The `operationId` (by default `<plugin>.<method>.<path>`, made of the path's
    /// segments).
    pub fn operation_id(mut self, id: impl Into<Cow<'static, str>>) -> Self {
        self.operation_id = Some(id.into());
        self
    }

    /// Marks the operation deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// A required JSON request body of type `T` (its schema as `T` deserializes).
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn body<T: schemars::JsonSchema + ?Sized>(mut self) -> Self {
        self.body = Some(MaybeSchema::of::<T>());
        self
    }

    /// A JSON response of type `T` at `status` (a 2xx, say); its description is the
    /// status's reason phrase unless [`described`](Self::described).
    #[cfg(feature = "openapi")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
    pub fn response<T: schemars::JsonSchema + ?Sized>(self, status: u16) -> Self {
        self.push(status, Content::Json(MaybeSchema::of::<T>()))
    }

    /// A response without a body at `status` (a 204, a redirect), with its description.
    pub fn status(mut self, status: u16, description: impl Into<Cow<'static, str>>) -> Self {
        self = self.push(status, Content::Empty);
        if let Some(last) = self.responses.last_mut() {
            last.description = Some(description.into());
        }
        self
    }

    /// The error envelope (`#/components/schemas/Error`) at `status` (409, 422, …).
    pub fn error(self, status: u16) -> Self {
        self.push(status, Content::Error)
    }

    /// Describes the response added last (instead of the status's reason phrase).
    pub fn described(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        if let Some(last) = self.responses.last_mut() {
            last.description = Some(description.into());
        }
        self
    }

    /// The documented statuses, in the order given.
    pub fn statuses(&self) -> impl Iterator<Item = u16> + '_ {
        self.responses.iter().map(|r| r.status)
    }

    /// Adds (or replaces) the response at `status`.
    fn push(mut self, status: u16, content: Content) -> Self {
        self.responses.retain(|r| r.status != status);
        self.responses.push(ResponseDoc {
            status,
            description: None,
            content,
        });
        self
    }
}

impl fmt::Debug for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("summary", &self.summary)
            .field("tags", &self.tags)
            .field("operation_id", &self.operation_id)
            .field("body", &self.body.is_some())
            .field("statuses", &self.statuses().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
