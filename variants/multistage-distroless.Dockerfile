# The Node.js major (20, the article's): `make bench NODE=24` builds on Node 24.
ARG NODE=20
# Stage 1: Builder
FROM node:${NODE}-alpine AS builder
WORKDIR /app
COPY package*.json ./
RUN npm ci --include=dev
COPY . .
RUN npm run build
RUN npm ci --omit=dev

# Stage 2: Distroless production image
FROM gcr.io/distroless/nodejs${NODE}-debian12 AS runner
WORKDIR /app
COPY --from=builder /app/dist ./dist
COPY --from=builder /app/node_modules ./node_modules
EXPOSE 3000
CMD ["dist/index.js"]
