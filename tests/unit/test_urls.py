"""SPEC §5 URL rules: ``shared.urls.check_url`` accepts public http(s) URLs and
refuses internal targets whatever their spelling."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.urls import UrlRejected, check_url

MAX = 2_048


def _accept(url: str) -> None:
    assert check_url(url, max_chars=MAX) == url


def _reject(url: str) -> UrlRejected:
    with pytest.raises(UrlRejected) as info:
        check_url(url, max_chars=MAX)
    assert str(info.value), "the refusal must say why"
    return info.value


# ------------------------------------------------------------------ accepted


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com", id="http-bare"),
        pytest.param("https://example.com/", id="https-slash"),
        pytest.param("https://EXAMPLE.com/Path", id="uppercase-host"),
        pytest.param("HTTPS://example.com", id="uppercase-scheme"),
        pytest.param("https://example.com:8443/a/b", id="port-and-path"),
        pytest.param("https://www.example.co.uk/x?q=1&r=two#frag", id="query-and-fragment"),
        pytest.param("https://shop.example.com/p/%E2%82%AC?x=%20", id="percent-encoded-path"),
        pytest.param("https://a-b.example/", id="hyphen-in-label"),
        pytest.param("https://example.com./", id="trailing-dot-dns"),
        pytest.param("https://bücher.de/katalog", id="idn-unicode"),
        pytest.param("https://xn--bcher-kva.de/", id="idn-punycode"),
        pytest.param("https://例え.テスト/", id="idn-japanese"),
        pytest.param("http://8.8.8.8/", id="public-ipv4"),
        pytest.param("http://1.1.1.1:8080/dns", id="public-ipv4-port"),
        pytest.param("http://[2001:4860:4860::8888]/", id="public-ipv6"),
        pytest.param("https://[2606:4700:4700::1111]:443/x", id="public-ipv6-port"),
        pytest.param("http://134744072/", id="public-ipv4-decimal"),
        pytest.param("http://0x08080808/", id="public-ipv4-hex"),
    ],
)
def test_accepts_public_http_urls(url: str) -> None:
    _accept(url)


# ------------------------------------------------------------------ refused: form


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://example.com/file", id="ftp"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("data:text/plain,hello", id="data"),
        pytest.param("gopher://example.com/", id="gopher"),
        pytest.param("ws://example.com/", id="ws"),
        pytest.param("example.com/path", id="no-scheme"),
        pytest.param("//example.com/path", id="scheme-relative"),
    ],
)
def test_rejects_non_http_schemes(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://user@example.com/", id="user"),
        pytest.param("http://user:pw@example.com/", id="user-password"),
        pytest.param("http://example.com@evil.com/", id="host-as-user"),
        pytest.param("http://:@example.com/", id="empty-userinfo"),
        pytest.param("http://127.0.0.1:80@example.com/", id="ip-as-user"),
    ],
)
def test_rejects_userinfo(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://", id="empty"),
        pytest.param("http:///path", id="empty-host"),
        pytest.param("https://:443/", id="port-only"),
        pytest.param("http://./", id="dot-only"),
    ],
)
def test_rejects_missing_host(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://exa mple.com/", id="space-in-host"),
        pytest.param("http://example.com/a b", id="space-in-path"),
        pytest.param(" http://example.com/", id="leading-space"),
        pytest.param("http://example.com/\n", id="newline"),
        pytest.param("http://example.com/\t", id="tab"),
        pytest.param("http://example.com/\x00", id="nul"),
        pytest.param("http://example.com/\x7f", id="del"),
        pytest.param("http://example.com/\u200b", id="zero-width-space"),
    ],
)
def test_rejects_spaces_and_control_characters(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com:99999/", id="port-too-big"),
        pytest.param("http://example.com:abc/", id="port-not-number"),
        pytest.param("http://[::1/", id="unclosed-bracket"),
        pytest.param("http://[not-an-ip]/", id="bracket-not-ip"),
        pytest.param("http://1.2.3.4.5/", id="five-ipv4-parts"),
        pytest.param("http://256.1.1.1/", id="ipv4-part-too-big"),
        pytest.param("http://-bad-.example.com/", id="label-hyphens"),
        pytest.param("http://exa_mple.com/", id="underscore"),
    ],
)
def test_rejects_malformed_urls(url: str) -> None:
    _reject(url)


def test_length_limit_is_inclusive() -> None:
    base = "https://example.com/"
    url = base + "a" * (100 - len(base))
    assert len(url) == 100
    assert check_url(url, max_chars=100) == url
    with pytest.raises(UrlRejected, match="100"):
        check_url(url + "a", max_chars=100)


def test_default_spec_limit_of_2048_characters() -> None:
    base = "https://example.com/"
    _accept(base + "a" * (MAX - len(base)))
    _reject(base + "a" * (MAX - len(base) + 1))


# ------------------------------------------------------------------ refused: internal IPs


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1/", id="loopback-dotted"),
        pytest.param("http://127.0.0.1:8080/admin", id="loopback-port"),
        pytest.param("http://127.0.0.1./", id="loopback-trailing-dot"),
        pytest.param("http://127.1/", id="loopback-shorthand-2"),
        pytest.param("http://127.0.1/", id="loopback-shorthand-3"),
        pytest.param("http://0x7f.1/", id="loopback-hex-shorthand"),
        pytest.param("http://0X7F.1/", id="loopback-hex-uppercase"),
        pytest.param("http://0x7f000001/", id="loopback-hex-int"),
        pytest.param("http://0x7f.0x0.0x0.0x1/", id="loopback-hex-dotted"),
        pytest.param("http://0177.0.0.1/", id="loopback-octal"),
        pytest.param("http://0177.0000.0000.0001/", id="loopback-octal-padded"),
        pytest.param("http://2130706433/", id="loopback-decimal"),
        pytest.param("http://017700000001/", id="loopback-octal-int"),
        pytest.param("http://10.0.0.1/", id="rfc1918-10"),
        pytest.param("http://012.0.0.1/", id="rfc1918-10-octal"),
        pytest.param("http://167772161/", id="rfc1918-10-decimal"),
        pytest.param("http://172.16.0.1/", id="rfc1918-172"),
        pytest.param("http://172.31.255.255/", id="rfc1918-172-top"),
        pytest.param("http://192.168.1.1/", id="rfc1918-192"),
        pytest.param("http://0xc0.0xa8.1.1/", id="rfc1918-192-hex"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="link-local-metadata"),
        pytest.param("http://2852039166/", id="link-local-metadata-decimal"),
        pytest.param("http://100.64.0.1/", id="cgnat"),
        pytest.param("http://0.0.0.0/", id="unspecified"),
        pytest.param("http://0/", id="unspecified-short"),
        pytest.param("http://0x0/", id="unspecified-hex"),
        pytest.param("http://192.0.2.1/", id="test-net-1"),
        pytest.param("http://198.18.0.1/", id="benchmarking"),
        pytest.param("http://224.0.0.1/", id="multicast"),
        pytest.param("http://239.255.255.250/", id="multicast-ssdp"),
        pytest.param("http://240.0.0.1/", id="reserved"),
        pytest.param("http://255.255.255.255/", id="broadcast"),
    ],
)
def test_rejects_non_global_ipv4_in_every_spelling(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[::1]/", id="loopback"),
        pytest.param("http://[0:0:0:0:0:0:0:1]/", id="loopback-long"),
        pytest.param("http://[::1]:8080/", id="loopback-port"),
        pytest.param("http://[::]/", id="unspecified"),
        pytest.param("http://[fe80::1]/", id="link-local"),
        pytest.param("http://[fe80::1%25eth0]/", id="link-local-zone"),
        pytest.param("http://[fc00::1]/", id="ula-fc"),
        pytest.param("http://[fd12::1]/", id="ula-fd"),
        pytest.param("http://[fd00:ec2::254]/", id="ula-aws-metadata"),
        pytest.param("http://[ff02::1]/", id="multicast"),
        pytest.param("http://[2001:db8::1]/", id="documentation"),
        pytest.param("http://[::ffff:127.0.0.1]/", id="mapped-loopback-dotted"),
        pytest.param("http://[::ffff:7f00:1]/", id="mapped-loopback-hex"),
        pytest.param("http://[0:0:0:0:0:ffff:7f00:1]/", id="mapped-loopback-long"),
        pytest.param("http://[::ffff:10.0.0.1]/", id="mapped-private"),
        pytest.param("http://[::ffff:169.254.169.254]/", id="mapped-metadata"),
        pytest.param("http://[64:ff9b::a00:1]/", id="nat64-private"),
        pytest.param("http://[64:ff9b::7f00:1]/", id="nat64-loopback"),
        pytest.param("http://[2002:7f00:1::]/", id="6to4-loopback"),
    ],
)
def test_rejects_non_global_ipv6(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        # RFC 8215 local-use NAT64 prefix: IANA marks it "not globally reachable".
        pytest.param("http://[64:ff9b:1::a00:1]/", id="local-nat64-private"),
        # Deprecated IPv4-compatible form (::/96, inside the IETF-reserved ::/8).
        pytest.param("http://[::127.0.0.1]/", id="ipv4-compatible-loopback"),
        pytest.param("http://[::10.0.0.1]/", id="ipv4-compatible-private"),
    ],
)
def test_rejects_other_ipv6_forms_embedding_internal_ipv4(url: str) -> None:
    _reject(url)


@pytest.mark.parametrize(
    "url",
    [
        # A WHATWG URL parser (browsers, most fetchers) maps these hosts to ASCII
        # (IDNA/UTS 46) and then reads them as IPv4: they are 127.0.0.1 / 10.0.0.1.
        pytest.param("http://127。0。0。1/", id="ideographic-full-stop"),
        pytest.param("http://１２７.０.０.１/", id="fullwidth-digits"),
        pytest.param("http://10．0．0．1/", id="fullwidth-full-stop"),
        pytest.param("http://0x7f｡1/", id="halfwidth-ideographic-stop-hex"),
    ],
)
def test_rejects_unicode_spellings_of_internal_ipv4(url: str) -> None:
    _reject(url)


# ------------------------------------------------------------------ refused: internal names


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://localhost/", id="localhost"),
        pytest.param("http://localhost:8080/", id="localhost-port"),
        pytest.param("http://LOCALHOST./", id="localhost-upper-trailing-dot"),
        pytest.param("http://LocalHost/", id="localhost-mixed-case"),
        pytest.param("http://foo.localhost/", id="sub-localhost"),
        pytest.param("http://a.b.localhost./", id="sub-localhost-trailing-dot"),
        pytest.param("http://ｌｏｃａｌｈｏｓｔ/", id="localhost-fullwidth"),
        pytest.param("http://x.internal/", id="internal"),
        pytest.param("http://db.corp.internal/", id="internal-deep"),
        pytest.param("http://printer.local/", id="mdns-local"),
        pytest.param("http://printer.local./", id="mdns-local-trailing-dot"),
        pytest.param("http://metadata.google.internal/", id="gce-metadata"),
        pytest.param("http://metadata.google.internal./", id="gce-metadata-trailing-dot"),
        pytest.param("http://METADATA.GOOGLE.INTERNAL/", id="gce-metadata-upper"),
        pytest.param("http://metadata/computeMetadata/v1/", id="metadata-short"),
        pytest.param("http://intranet/", id="single-label"),
        pytest.param("http://intranet./", id="single-label-trailing-dot"),
        pytest.param("http://com/", id="single-label-tld"),
    ],
)
def test_rejects_internal_and_single_label_hosts(url: str) -> None:
    _reject(url)


# ------------------------------------------------------------------ properties

_NON_GLOBAL_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/29",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]

non_global_ipv4 = st.sampled_from(_NON_GLOBAL_V4).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
        ipaddress.IPv4Address
    )
)


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    a, b, c, d = address.packed
    value = int(address)
    return [
        str(address),  # dotted
        str(value),  # decimal integer
        hex(value),  # hex integer
        ".".join(hex(x) for x in (a, b, c, d)),  # hex dotted
        ".".join(f"0{x:o}" for x in (a, b, c, d)),  # octal dotted
        f"{a}.{b}.{c * 256 + d}",  # shorthand, 3 parts
        f"{a}.{b * 65536 + c * 256 + d}",  # shorthand, 2 parts
        f"{address}.",  # trailing dot
        f"[::ffff:{address}]",  # IPv4-mapped IPv6
    ]


@given(non_global_ipv4)
def test_property_non_global_ipv4_rejected_in_every_spelling(
    address: ipaddress.IPv4Address,
) -> None:
    for spelling in _spellings(address):
        with pytest.raises(UrlRejected):
            check_url(f"http://{spelling}/", max_chars=MAX)


@given(
    # Unicast space 1.0.0.0-223.255.255.255: mostly global, so little is filtered.
    st.integers(0x01000000, 0xDFFFFFFF)
    .map(ipaddress.IPv4Address)
    .filter(lambda a: a.is_global and not a.is_multicast)
)
def test_property_global_ipv4_accepted(address: ipaddress.IPv4Address) -> None:
    url = f"https://{address}/page"
    assert check_url(url, max_chars=MAX) == url
