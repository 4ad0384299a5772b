"""HL7 CDA R2 documents as French software sends them (CI-SIS content models): hardened parsing
(`hardened`), the header's metadata (`header`), the narrative's safe HTML (`narrative`), a
laboratory report's values (`crbio`) and what a stored CDA shows (`reading`). docs/cda.md."""
