//! The living mesh: presence leases, subscriptions to the change stream,
//! awareness documents and news. These are the payloads of
//! `/v1/presence`, `/v1/events?subscribe=…`, `/v1/objects/{id}/awareness`
//! and `/v1/news`, shared by the server and every client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::api::{Change, DeviceId, ObjectId, Role, UserId};

/// `POST /v1/presence`: the device is online until the lease runs out;
/// it should renew it every `renew_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceLease {
    pub lease_ms: u64,
    pub renew_ms: u64,
}

/// A kind of resource the change stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    /// Mesh objects appearing, changing, being deleted or leaving the caller.
    Objects,
    /// An object's data feed.
    Feed,
    /// An object's member list.
    Members,
    /// An object's awareness document.
    Awareness,
    /// News of an object, or of the whole mesh.
    News,
    /// The caller's devices: enrolment, revocation, presence; an app's own
    /// revocation.
    Devices,
    /// Invitations to the caller.
    Invitations,
}

impl TopicKind {
    const ALL: [TopicKind; 7] = [
        TopicKind::Objects,
        TopicKind::Feed,
        TopicKind::Members,
        TopicKind::Awareness,
        TopicKind::News,
        TopicKind::Devices,
        TopicKind::Invitations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Objects => "objects",
            TopicKind::Feed => "feed",
            TopicKind::Members => "members",
            TopicKind::Awareness => "awareness",
            TopicKind::News => "news",
            TopicKind::Devices => "devices",
            TopicKind::Invitations => "invitations",
        }
    }

    /// Whether a topic of this kind may name one object.
    fn per_object(self) -> bool {
        matches!(
            self,
            TopicKind::Objects
                | TopicKind::Feed
                | TopicKind::Members
                | TopicKind::Awareness
                | TopicKind::News
        )
    }
}

/// One subscription: a kind of resource, of one object or of all the
/// caller may see. Written `KIND` or `KIND:OBJECT-ID`
/// (`feed:6f1c…`, `devices`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic {
    pub kind: TopicKind,
    pub object: Option<ObjectId>,
}

impl Topic {
    pub fn all(kind: TopicKind) -> Topic {
        Topic { kind, object: None }
    }

    pub fn of(kind: TopicKind, object: ObjectId) -> Topic {
        Topic {
            kind,
            object: Some(object),
        }
    }

    /// Whether a change belongs to this topic. A topic about one object
    /// also carries that object's own lifecycle (`object_changed`,
    /// `object_deleted`), so a subscriber learns when the object is gone
    /// or no longer visible to it.
    pub fn matches(&self, change: &Change) -> bool {
        let (kind, object) = change.topic();
        let object_matches = self.object.is_none() || self.object == object;
        (kind == self.kind && object_matches)
            || (kind == TopicKind::Objects && self.object.is_some() && self.object == object)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.object {
            Some(object) => write!(f, "{}:{object}", self.kind.as_str()),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

impl FromStr for Topic {
    type Err = String;

    fn from_str(s: &str) -> Result<Topic, String> {
        let (kind, object) = match s.split_once(':') {
            Some((kind, object)) => (kind, Some(object)),
            None => (s, None),
        };
        let kind = TopicKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| {
                format!(
                    "unknown topic {:?}: use one of objects, feed, members, awareness, news, devices, invitations, optionally followed by :OBJECT-ID",
                    s.chars().take(80).collect::<String>()
                )
            })?;
        let object = match object {
            None => None,
            Some(_) if !kind.per_object() => {
                return Err(format!("topic {:?} takes no object id", kind.as_str()));
            }
            Some(id) => Some(
                id.parse::<ObjectId>()
                    .map_err(|_| format!("topic {s:?}: {id:?} is not an object id"))?,
            ),
        };
        Ok(Topic { kind, object })
    }
}

/// What a change stream carries: everything the caller may see, or only
/// the topics it subscribed to (`?subscribe=feed:ID,devices`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Subscription {
    #[default]
    Everything,
    Topics(Vec<Topic>),
}

impl Subscription {
    /// Parses the comma-separated `subscribe` parameter.
    pub fn parse(list: &str) -> Result<Subscription, String> {
        let mut topics = list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Topic>, String>>()?;
        if topics.is_empty() {
            return Err("subscribe names no topic".into());
        }
        topics.sort();
        topics.dedup();
        Ok(Subscription::Topics(topics))
    }

    pub fn matches(&self, change: &Change) -> bool {
        match self {
            Subscription::Everything => true,
            Subscription::Topics(topics) => topics.iter().any(|t| t.matches(change)),
        }
    }

    /// The objects this subscription names one by one.
    pub fn objects(&self) -> impl Iterator<Item = ObjectId> + '_ {
        let topics = match self {
            Subscription::Everything => &[][..],
            Subscription::Topics(topics) => &topics[..],
        };
        topics.iter().filter_map(|t| t.object)
    }
}

/// The largest awareness state one device may publish, in bytes of JSON.
pub const MAX_AWARENESS_STATE: usize = 16 * 1024;

/// `PUT /v1/objects/{id}/awareness`: this device's state for the object,
/// any JSON value up to [`MAX_AWARENESS_STATE`] bytes. It lasts while the
/// device's presence lease does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishAwareness {
    pub state: serde_json::Value,
}

/// One device's entry in an object's awareness document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwarenessEntry {
    pub user: UserId,
    pub email: String,
    pub device: DeviceId,
    pub device_name: String,
    pub state: serde_json::Value,
    pub updated: DateTime<Utc>,
}

/// `GET /v1/objects/{id}/awareness`, and the payload of an
/// `awareness_changed` event: who is present in an object, and what each
/// of their devices published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awareness {
    pub object: ObjectId,
    pub entries: Vec<AwarenessEntry>,
}

/// A Live Folder's awareness state: the files a device has open.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FolderAwareness {
    pub open: Vec<OpenFile>,
}

/// A file open on a device: its path inside the folder (`/`-separated, as
/// that device shows it) and its entry's sync id (the same on every
/// device, whatever the name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpenFile {
    pub path: String,
    pub entry: String,
    /// Whether it is open for writing.
    pub writing: bool,
}

/// How many file names a coalesced news item keeps.
pub const NEWS_NAMES: usize = 10;

/// What a news item tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NewsBody {
    /// Entries of a folder were added, changed or removed by one person
    /// within a short window; `names` holds the latest few distinct names.
    Files {
        added: u32,
        changed: u32,
        removed: u32,
        names: Vec<String>,
    },
    /// Someone became a member.
    MemberJoined { member: String, role: Role },
    /// Someone left or was removed.
    MemberLeft { member: String },
    /// A device was enrolled. (Its name is `name`: the item's own
    /// `device_name`, beside it in the same JSON object, is the actor's.)
    DeviceAdded { device: DeviceId, name: String },
    /// Posted by an application.
    Post {
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<String>,
    },
}

/// One item of news. An item that coalesces further changes keeps its
/// `id` and is sent again with the new counts and `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsItem {
    pub id: u64,
    /// The object it is about; `None` for news of the whole mesh.
    pub object: Option<ObjectId>,
    /// Who caused it (e-mail), and from which device.
    pub actor: Option<String>,
    pub device_name: Option<String>,
    /// When the first and the latest change it tells of happened.
    pub first: DateTime<Utc>,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: NewsBody,
}

impl NewsItem {
    /// One line for people: "alice@example.org changed 3 files (a.txt, b.txt, …)".
    pub fn summary(&self) -> String {
        let who = self.actor.as_deref().unwrap_or("someone");
        match &self.body {
            NewsBody::Files {
                added,
                changed,
                removed,
                names,
            } => {
                let counts: Vec<String> =
                    [(added, "added"), (changed, "changed"), (removed, "removed")]
                        .into_iter()
                        .filter(|(n, _)| **n > 0)
                        .map(|(n, verb)| {
                            format!("{verb} {n} {}", if *n == 1 { "file" } else { "files" })
                        })
                        .collect();
                let total = added + changed + removed;
                let mut shown = names.join(", ");
                if total as usize > names.len() {
                    shown.push_str(", …");
                }
                format!("{who} {} ({shown})", counts.join(", "))
            }
            NewsBody::MemberJoined { member, role } => {
                format!("{member} joined as {}", role.as_str())
            }
            NewsBody::MemberLeft { member } => format!("{member} left"),
            NewsBody::DeviceAdded { name, .. } => {
                format!("{who} added device {name:?}")
            }
            NewsBody::Post { title, text, .. } => match text {
                Some(text) => format!("{who}: {title} — {text}"),
                None => format!("{who}: {title}"),
            },
        }
    }
}

/// `POST /v1/news` and `POST /v1/objects/{id}/news`: an application's own
/// news item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostNews {
    pub title: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub app: Option<String>,
}

/// The largest title and text of a posted news item, in bytes.
pub const MAX_NEWS_TITLE: usize = 200;
pub const MAX_NEWS_TEXT: usize = 4096;

impl PostNews {
    /// Checks the sizes and characters of a posted item.
    pub fn validate(&self) -> Result<(), String> {
        let clean = |s: &str| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
        if self.title.trim().is_empty() || self.title.len() > MAX_NEWS_TITLE || !clean(&self.title)
        {
            return Err(format!(
                "title must be 1 to {MAX_NEWS_TITLE} bytes without control characters"
            ));
        }
        if let Some(text) = &self.text
            && (text.len() > MAX_NEWS_TEXT || !clean(text))
        {
            return Err(format!(
                "text must be at most {MAX_NEWS_TEXT} bytes without control characters"
            ));
        }
        if let Some(app) = &self.app
            && (app.is_empty() || app.len() > 64 || !clean(app))
        {
            return Err("app must be 1 to 64 bytes without control characters".into());
        }
        Ok(())
    }
}

/// `GET /v1/news` and `GET /v1/objects/{id}/news`: newest first; pass
/// `before=next_before` for the page after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewsPage {
    pub items: Vec<NewsItem>,
    pub next_before: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> ObjectId {
        ObjectId::generate()
    }

    #[test]
    fn topics_parse_and_print() {
        let id = object();
        for text in [
            "devices".to_string(),
            "news".into(),
            format!("feed:{id}"),
            format!("awareness:{id}"),
        ] {
            let topic: Topic = text.parse().unwrap();
            assert_eq!(topic.to_string(), text);
        }
        assert!("devices:x".parse::<Topic>().is_err());
        assert!(format!("invitations:{id}").parse::<Topic>().is_err());
        assert!("feed:not-an-id".parse::<Topic>().is_err());
        assert!("everything".parse::<Topic>().is_err());
        assert!(Subscription::parse(" , ").is_err());
    }

    #[test]
    fn a_topic_matches_its_changes_and_its_object_lifecycle() {
        let (a, b) = (object(), object());
        let sub = Subscription::parse(&format!("feed:{a},devices")).unwrap();
        let entry = |object| Change::EntryChanged {
            object,
            entry: "x".into(),
        };
        assert!(sub.matches(&entry(a)));
        assert!(!sub.matches(&entry(b)));
        assert!(sub.matches(&Change::ObjectDeleted { object: a }));
        assert!(!sub.matches(&Change::ObjectDeleted { object: b }));
        assert!(!sub.matches(&Change::MembersChanged { object: a }));
        assert!(sub.matches(&Change::DevicePresence {
            device: DeviceId::generate(),
            online: true
        }));
        let every_feed = Subscription::parse("feed").unwrap();
        assert!(every_feed.matches(&entry(b)));
        assert!(!every_feed.matches(&Change::ObjectDeleted { object: b }));
        assert!(Subscription::Everything.matches(&Change::MembersChanged { object: b }));
    }

    #[test]
    fn posted_news_is_checked() {
        let post = |title: &str, text: Option<&str>| PostNews {
            title: title.into(),
            text: text.map(Into::into),
            app: None,
        };
        assert!(
            post("Build passed", Some("all green\nsee log"))
                .validate()
                .is_ok()
        );
        assert!(post(" ", None).validate().is_err());
        assert!(post("bell\u{7}", None).validate().is_err());
        assert!(post(&"x".repeat(201), None).validate().is_err());
        assert!(post("t", Some(&"x".repeat(5000))).validate().is_err());
    }

    #[test]
    fn a_files_item_reads_well() {
        let item = NewsItem {
            id: 1,
            object: Some(object()),
            actor: Some("alice@example.org".into()),
            device_name: Some("laptop".into()),
            first: Utc::now(),
            at: Utc::now(),
            body: NewsBody::Files {
                added: 1,
                changed: 2,
                removed: 0,
                names: vec!["a.txt".into(), "b.txt".into()],
            },
        };
        assert_eq!(
            item.summary(),
            "alice@example.org added 1 file, changed 2 files (a.txt, b.txt, …)"
        );
        let json = serde_json::to_value(&item).unwrap();
        assert_eq!(json["kind"], "files");
        assert_eq!(serde_json::from_value::<NewsItem>(json).unwrap(), item);
    }

    #[test]
    fn every_kind_of_item_round_trips() {
        let item = |body| NewsItem {
            id: 7,
            object: None,
            actor: Some("alice@example.org".into()),
            device_name: Some("laptop".into()),
            first: Utc::now(),
            at: Utc::now(),
            body,
        };
        for body in [
            NewsBody::MemberJoined {
                member: "bob@example.org".into(),
                role: Role::Editor,
            },
            NewsBody::MemberLeft {
                member: "bob@example.org".into(),
            },
            NewsBody::DeviceAdded {
                device: DeviceId::generate(),
                name: "phone".into(),
            },
            NewsBody::Post {
                title: "Build passed".into(),
                text: None,
                app: Some("ci".into()),
            },
        ] {
            let item = item(body);
            let text = serde_json::to_string(&item).unwrap();
            assert_eq!(
                serde_json::from_str::<NewsItem>(&text).unwrap(),
                item,
                "{text}"
            );
        }
    }
}
