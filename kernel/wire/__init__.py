"""Wire encodings every encoder shares: protobuf (varints, tags derived from descriptors) and RESP."""
