FROM golang:1.26.8-bookworm
COPY . .
RUN go build -o /app .
USER 65532
ENTRYPOINT ["/app"]
