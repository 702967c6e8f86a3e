"""The captioning library: text, vocabulary, image loading, encoders, attention decoder, search,
model bundles and metrics. No Redis, database or Telegram here."""
