"""Tables of the correlation state: events, incidents, their resource keys, the topology graph."""
