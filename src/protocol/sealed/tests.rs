//! The sealed-content tests: RFC 8291's own example, a round trip, and every way a
//! body can be wrong ending in a typed error.

use super::*;

/// RFC 8291, Appendix A: the user agent's private key and auth secret, its public key,
/// and the body the application server sent.
const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

fn rfc_keys() -> DeviceKeys {
    let mut bytes = B64.decode(UA_PRIVATE).unwrap();
    bytes.extend(B64.decode(AUTH).unwrap());
    DeviceKeys::from_bytes(&bytes).unwrap()
}

#[test]
fn the_rfc_example_decrypts() {
    let keys = rfc_keys();
    assert_eq!(keys.public().p256dh, UA_PUBLIC);
    assert_eq!(keys.public().auth, AUTH);
    assert_eq!(
        keys.open(BODY).unwrap(),
        b"When I grow up, I want to be a watermelon"
    );
    // Padded base64url reads the same.
    assert!(keys.open(&format!("{BODY}==")).is_ok());
    check_content(BODY).unwrap();
}

#[test]
fn sealed_for_a_device_opens_there_and_nowhere_else() {
    let device = DeviceKeys::generate().unwrap();
    let other = DeviceKeys::generate().unwrap();
    let public = device.public();
    let pair = PublicKeys::parse_pair(&format!("{}:{}", public.p256dh, public.auth)).unwrap();
    let sealed = pair.seal(br#"{"visualContent":{"title":"hi"}}"#).unwrap();
    check_content(&sealed).unwrap();
    assert_eq!(
        device.open(&sealed).unwrap(),
        br#"{"visualContent":{"title":"hi"}}"#
    );
    assert!(matches!(other.open(&sealed), Err(SealError::Decrypt(_))));
    // The same key with another auth secret fails too.
    let mut bytes = device.to_bytes();
    bytes[40] ^= 1;
    let wrong_auth = DeviceKeys::from_bytes(&bytes).unwrap();
    assert!(matches!(
        wrong_auth.open(&sealed),
        Err(SealError::Decrypt(_))
    ));
    // Kept and read back, the keys are the same keys.
    let kept = DeviceKeys::from_bytes(&device.to_bytes()).unwrap();
    assert_eq!(kept.public(), device.public());
    assert!(!format!("{device:?}").contains(&B64.encode(&device.to_bytes()[..32])));
}

#[test]
fn every_broken_body_is_a_typed_error() {
    let keys = rfc_keys();
    let body = B64.decode(BODY).unwrap();
    // Each byte flipped in turn: salt, key id, ciphertext or tag. (The record size,
    // bytes 16 to 19, is not authenticated: a larger one changes nothing read.)
    for at in 0..body.len() {
        let mut tampered = body.clone();
        tampered[at] ^= 0x40;
        let opened = keys.open(&B64.encode(&tampered));
        if (16..20).contains(&at) {
            assert!(
                opened.is_err() || opened.unwrap() == b"When I grow up, I want to be a watermelon"
            );
        } else {
            assert!(opened.is_err(), "flipping byte {at} went unnoticed");
        }
    }
    // Every truncation.
    for len in 0..body.len() {
        assert!(keys.open(&B64.encode(&body[..len])).is_err(), "{len} bytes");
    }
    // A key id length past the end, a key id that is no point, record sizes smaller
    // than a record (0, 1, 17 and 18 bytes).
    // Whether the service sees it without a key is said beside each.
    let mut odd_ones = vec![];
    for (at, value, visible) in [(20, 0xff, true), (20, 64, true), (21, 0x05, false)] {
        let mut odd = body.clone();
        odd[at] = value;
        odd_ones.push((odd, visible));
    }
    for (size, visible) in [
        (0u32, true),
        (1, true),
        (17, true),
        (18, false),
        (40, false),
    ] {
        let mut odd = body.clone();
        odd[16..20].copy_from_slice(&size.to_be_bytes());
        odd_ones.push((odd, visible));
    }
    for (odd, visible) in odd_ones {
        let text = B64.encode(&odd);
        assert!(keys.open(&text).is_err());
        assert_eq!(check_content(&text).is_err(), visible);
    }
    assert!(matches!(
        keys.open("not base64!"),
        Err(SealError::Encoding(_))
    ));
    assert!(matches!(check_content("AAAA"), Err(SealError::Size(3))));
    let huge = "A".repeat(MAX_SEALED_BYTES * 2);
    assert!(matches!(check_content(&huge), Err(SealError::Size(_))));
    assert!(matches!(keys.open(&huge), Err(SealError::Size(_))));
}

#[test]
fn malformed_keys_are_refused_with_what_is_wrong() {
    let message = |text: &str| PublicKeys::parse_pair(text).unwrap_err().to_string();
    assert!(message("nocolon").contains("P256DH:AUTH"));
    assert!(message(&format!("{UA_PUBLIC}:AAAA")).contains("not 16"));
    assert!(message(&format!("AAAA:{AUTH}")).contains("not a P-256"));
    assert!(message(&format!("!!:{AUTH}")).contains("not base64url"));
    assert!(DeviceKeys::from_bytes(&[0; 47]).is_err());
    assert!(
        DeviceKeys::from_bytes(&[0; 48]).is_err(),
        "zero is no private key"
    );
}
