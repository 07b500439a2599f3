"""Agent graphs (LangGraph): plan -> solve steps with search -> verify -> replan -> synthesize."""
