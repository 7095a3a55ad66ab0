"""What a partner reads of one product unit or one customer: the records it may see (through the
one visibility decision, ``clearinghouse.records.visibility``), oldest first, and on a unit's
timeline the links reconciliation made between them — shown only where the reader may see both
ends. It sits above records and reconciliation, the one place that joins the two."""
