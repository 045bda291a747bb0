FROM golang:1.26.8-bookworm AS build
RUN go build -o /app .
FROM debian:12-slim
COPY --from=build /app /app
USER 65532
ENTRYPOINT ["/app"]
