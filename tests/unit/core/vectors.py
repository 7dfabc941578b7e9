"""Values published in shared/reference/attention-oracle-program.md (§1, §2, §4, §12).

Copied by hand from the reference; nothing here was produced by `core/`.
"""

from __future__ import annotations

PROGRAM_ID = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"
CCM_MINT = "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM"
CHANNEL = "youtube_lofi"
PROTOCOL_STATE = "596VBoVvzASAhe38CcBSJnv1LdVFPu4EdB8gw1Ko2nx3"
PROTOCOL_STATE_BUMP = 253
TREASURY = "95qQ4kePYadvMQETjjqCmHJLzJq9YnrAEBwtVfzqMwAF"
SUBJECT_ID = "130f2f4c27a7263ad011ca79a269fb25ce1675738144dab95e884dcac8a6b7eb"
CHANNEL_CONFIG = "3TfmZsdjsdQPSY12AR6vN8nVMfjMKb3ShaKf99jQcYiA"
CHANNEL_CONFIG_BUMP = 255
CHANNEL_CONFIG_HEX = "248c4f79a6f199725b8be9f7ef155b70036cc5fa260bbd84382273947daae0d7"
MINT_HEX = "c093f58cc780fddd89f14271e76324ed233e38ed5dd745e0d491117eb10fdf4c"
WALLET0 = "2pHjZLqsSqi35xuYHmZbZBM1xfYV6Ruv57r3eFPvZZaD"
WALLET0_HEX = "1af8e7e6e1904ed7f39fcd626a15b111067b7a88f21c8c7c3b1f8aa75e508116"
CLAIM_STATE_WALLET0 = "4oPCg5ZkXHG8Ktce8Z4W5aUZ3c5NSsYaTSCmec38WDD1"

#: (wallet bytes, cumulative_total) of the three-leaf example, in the reference's leaf order.
EXAMPLE_ENTRIES = (
    (bytes.fromhex(WALLET0_HEX), 1_000_000_000),
    (bytes([1]) * 32, 2_500_000_000),
    (bytes([2]) * 32, 42),
)
EXAMPLE_ROOT_SEQ = 1
LEAVES = (
    "da1958b9514205f3f06a25b8534d51dd0b5c3375b05cecc39d6c9ac099719569",
    "e494d5df23ef8b7897abe7490b164db875c4f047e1d95c76cad1894cf635c73f",
    "7f5e886f70e93d172fbfa8e89a99c979960734ad72f1940b03f8d136895346c3",
)
ROOT = "b167e655801696f66bbcc9f444d4140c750dceb18d8004fbff40b1bbcf396caa"
PROOFS = (
    (LEAVES[1], "8258866ae79fd6336f84a07e36af3d6cba1f1ff09a8b7952ecfc54997370f27a"),
    (LEAVES[0], "8258866ae79fd6336f84a07e36af3d6cba1f1ff09a8b7952ecfc54997370f27a"),
    (LEAVES[2], "9375e131d2cf581b87a26240d7683b91dc759d3a6f072001753c7709cc168e21"),
)

INSTRUCTION_DISCRIMINATORS = {
    "initialize_mint": "d12ac3048155d12c",
    "initialize_channel_cumulative": "9a8189754421ade5",
    "publish_cumulative_root": "38c189e2399b4019",
    "claim_cumulative": "a55803c451f8c98a",
    "claim_cumulative_sponsored": "411d053ac083fef4",
    "migrate_channel_config_v2": "5932116c1552c8d2",
    "update_channel_creator_fee": "3df907c59223db43",
    "admin_recover_root_seq": "6cb781375b001575",
    "close_channel": "006824014200679d",
    "harvest_fees": "5a959ef1a3ba9bca",
    "update_publisher": "e8a88ad65f39e0ea",
    "set_paused": "5b3c7dc0b0e1a6da",
    "update_admin": "a1b028d53cb8b3e4",
    "claim_cumulative_v3": "ca5f5bf5a1ec184c",
    "publish_global_root": "518de216fea762ff",
    "claim_global": "36b4975b48f36ef7",
    "claim_global_v2": "f82caa6531aa8c7e",
    "set_channel_merkle_root": "411810063f69997b",
    "claim_channel_open": "dfabbb29a7470fb8",
}
ACCOUNT_DISCRIMINATORS = {
    "ProtocolState": "2133ad86238cc3f8",
    "ChannelConfigV2": "0fcb4c4f34bc472f",
    "ClaimStateV2": "9406d859d6262447",
    "GlobalRootConfig": "a760c2e81968eb3e",
    "ClaimStateGlobal": "1c8288cbe7da9da7",
    "ChannelState": "4a848dc440345388",
    "EpochState": "bf3f8bed900cdfd2",
}
EVENT_DISCRIMINATORS = {
    "CumulativeRewardsClaimed": "6e3d928afda76d39",
    "CreatorFeeUpdated": "54e48bcb9d372c29",
    "RootSeqRecovered": "a650933c07161dfa",
    "ChannelClosed": "77c617fed87c5410",
    "PublisherUpdated": "a9ee5c6e8ca7c6aa",
    "ProtocolPaused": "236ff58aedc74fdf",
    "AdminTransferred": "ff93b605c7d926b3",
    "FeesHarvested": "1eecb6be4dfe4c0a",
    "GlobalRootPublished": "f53ed38c750d1ebc",
    "GlobalRewardsClaimed": "955e89d5189b603d",
}

#: §4: the §2 wallet claiming 1 CCM, creator fee 0, root_seq 1.
CLAIM_LOG_LINE = (
    "Program data: bj2Siv2nbTkkjE95pvGZcluL6ffvFVtwA2zF+iYLvYQ4InOUfarg1xr45+bhkE7X85/NYmoVsREG"
    "e3qI8hyMfDsfiqdeUIEWAMqaOwAAAAAAAAAAAAAAAADKmjsAAAAAAQAAAAAAAAA="
)

#: §12 ring leaf v0: keccak([07]*32 || u32 5 || u64 123456 || "twitch:unit:alice").
RING_LEAF = "3719e81ed948903eb5fefc3ddd9e4e12d18f24f3462a57509618651678cc11b4"

#: published Keccak-256 (original padding) digests.
KECCAK_EMPTY = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
KECCAK_ABC = "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
