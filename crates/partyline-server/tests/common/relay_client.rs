//! A bare iroh relay client, as a party's endpoint would connect, to see
//! whom a relay admits and when it drops them.
use iroh_base::SecretKey;
use iroh_relay::client::{Client, ClientBuilder};
use iroh_relay::protos::relay::{ClientToRelayMsg, RelayToClientMsg};
use n0_future::{SinkExt, StreamExt};
use partyline_wire::{Announcement, AnnouncementKey, CertPin, EndpointKey, Invite, SessionId};

/// Connects to the relay at `url`, trusting `pin`, as `key`, showing `token` if any.
pub async fn connect(
    url: &str,
    pin: CertPin,
    key: &SecretKey,
    token: Option<String>,
) -> Result<Client, String> {
    let url: iroh_base::RelayUrl = url.parse().unwrap();
    let mut builder = ClientBuilder::new(url, key.clone(), iroh_dns::dns::DnsResolver::new())
        .tls_client_config(partyline_session::tls::pinned_client_config(pin));
    if let Some(token) = token {
        builder = builder.auth_token(token);
    }
    super::within(10, builder.connect())
        .await
        .map_err(|e| e.to_string())
}

/// The relay answers a ping: the connection is one it serves.
pub async fn ping(client: &mut Client) {
    client
        .send(ClientToRelayMsg::Ping(*b"partylin"))
        .await
        .unwrap();
    loop {
        match super::within(10, client.next()).await {
            Some(Ok(RelayToClientMsg::Pong(payload))) => {
                assert_eq!(&payload, b"partylin");
                return;
            }
            Some(Ok(_)) => {}
            other => panic!("the relay did not answer a ping: {other:?}"),
        }
    }
}

/// Waits until the relay drops the connection.
pub async fn dropped(client: &mut Client) {
    while let Some(Ok(_)) = client.next().await {}
}

/// `key`'s announcement in session `id`, signed as a party would.
pub fn announcement_of(
    id: SessionId,
    key: &SecretKey,
    name: &str,
) -> partyline_wire::SignedAnnouncement {
    let invite = Invite::new(
        &"https://127.0.0.1:1".parse().unwrap(),
        id,
        2,
        CertPin([0; 32]),
        super::SECRET,
    )
    .unwrap();
    AnnouncementKey::derive(&invite).sign(&Announcement {
        session: id,
        name: name.into(),
        endpoint: EndpointKey(*key.public().as_bytes()),
        relay_url: None,
        addrs: vec![],
        joined_at_ms: 1,
        identity: None,
        webrtc: None,
    })
}
