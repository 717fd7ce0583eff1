use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use xcore::web::Web;

/// Sends requests to an `Xcore`'s web layer in process — no socket — through the same
/// dispatcher and layers every adapter mounts (tenant resolution, body limit, envelopes, the
/// admin API).
///
/// ```
/// use xcore_testkit::{TestApp, TestClient};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = TestApp::builder().boot().await.unwrap();
/// let client = app.client();
/// let response = client.get("/plugin/nobody/here").await;
/// assert_eq!(response.status(), 404);
/// assert_eq!(response.json()["status"], "error");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TestClient {
    web: Web,
    headers: HeaderMap,
}

impl TestClient {
    /// A client of `web`.
    pub fn new(web: Web) -> Self {
        Self {
            web,
            headers: HeaderMap::new(),
        }
    }

    /// Sends this header with every request.
    ///
    /// # Panics
    ///
    /// If the name or the value is not a valid header (a bug in the test).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name =
            HeaderName::try_from(name).unwrap_or_else(|e| panic!("header name `{name}`: {e}"));
        let value =
            HeaderValue::try_from(value).unwrap_or_else(|e| panic!("header value `{value}`: {e}"));
        self.headers.insert(name, value);
        self
    }

    /// Sends `X-Tenant-ID: <tenant>` with every request.
    pub fn tenant(self, tenant: &str) -> Self {
        self.header("x-tenant-id", tenant)
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(Method::DELETE, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, path, Some(body.to_string().into()))
            .await
    }

    /// `POST path` with a raw body, sent as `application/json` (to test invalid JSON).
    pub async fn post_raw(&self, path: &str, body: &'static str) -> TestResponse {
        self.send(
            Method::POST,
            path,
            Some(Bytes::from_static(body.as_bytes())),
        )
        .await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(Method::PUT, path, Some(body.to_string().into()))
            .await
    }

    async fn send(&self, method: Method, path: &str, body: Option<Bytes>) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .unwrap_or_else(|e| panic!("invalid request to `{path}`: {e}"));
        self.request(request).await
    }

    /// Sends any request.
    pub async fn request(&self, request: Request<Full<Bytes>>) -> TestResponse {
        let response = match self.web.handle(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_else(|e| panic!("reading the response body failed: {e}"));
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON (the assertion a test wants).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }
}
