FROM golang:1.26.8-bookworm AS build
ADD https://example.com/tool.tar.gz /tmp/
RUN go build -o /app .
FROM scratch
COPY --from=build /app /app
USER 65532:65532
ENTRYPOINT ["/app"]
