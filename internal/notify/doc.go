// Package notify tells people what a rollout does: it sends events to Slack,
// Microsoft Teams, Discord and Google Chat incoming webhooks and to generic
// JSON webhooks.
//
// A Dispatcher holds the server's global channels and takes each rollout's
// own channels with every message (Message.Channels, from the spec's
// notify list). A channel's severity is the least severe event it receives
// (info < warn < error). Every message names the rollout, the canary
// version, the phase, the weight and the event's reason with its numbers.
//
// Delivery never blocks the caller: Notify puts the message on one bounded
// queue per destination and returns. Each destination has its own goroutine
// that sends its messages one at a time, in order, each attempt bounded by
// Options.Timeout, so a hanging chat service delays only its own messages.
// A message that finds its queue full pushes out the oldest one waiting
// (recent events matter more); drops, failures and sends are counted
// (Stats) and logged. There are no retries: a failed message is logged and
// counted, and the next event is the next chance.
//
// Channel URLs are secrets: they come from the environment ("${SLACK_URL}")
// or a file (urlFile), are resolved through secret.Resolver (which teaches
// its Redactor) and never appear in logs, errors or stats; channels are
// named by their field path ("spec.notify[1]") instead. An unknown type is an
// error when the channel is built, never a silent fallback.
//
// Formats: Slack gets text with Block Kit sections (mrkdwn, with &, < and >
// escaped); Teams gets an Adaptive Card 1.4 in a "message" attachment, the
// format of Teams' Workflows webhooks (the older Office 365 connector
// MessageCard is being retired); Discord gets an embed with mentions
// disabled; Google Chat gets a text message; a generic webhook gets the
// JSON object GenericPayload (schema "aviary.dev/notification/v1").
//
// The package may import the standard library, the core (rollout) and the
// secret package.
package notify
